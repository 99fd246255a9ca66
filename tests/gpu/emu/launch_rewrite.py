#!/usr/bin/env python3
"""CUDA emulation (tests/gpu/emu): rewrites a .cu file into host C++.

  kernel<<<grid, block, smem, stream>>>(args)  ->  emu::launch(kernel, grid, block, smem, stream)(args)
  extern __shared__ T name[];                  ->  EMU_EXTERN_SHARED(T, name);
  __shared__ T a[N], b[M][K];                  ->  EMU_SHARED(T, a, [N]); EMU_SHARED(T, b, [M][K]);

usage: launch_rewrite.py IN.cu OUT.cc
"""
import re
import sys


def kernel_start(src, end):
    """Start index of the kernel expression that ends just before `end`
    (an identifier path, possibly with balanced template arguments)."""
    i = end
    while i > 0 and src[i - 1].isspace():
        i -= 1
    while True:
        if i > 0 and src[i - 1] == ">":  # template arguments
            depth, i = 0, i - 1
            while True:
                if src[i] == ">":
                    depth += 1
                elif src[i] == "<":
                    depth -= 1
                    if depth == 0:
                        break
                i -= 1
        j = i
        while j > 0 and (src[j - 1].isalnum() or src[j - 1] == "_"):
            j -= 1
        if j == i:
            raise SystemExit(f"launch_rewrite: no kernel name before <<< at offset {end}")
        i = j
        if src[i - 2:i] == "::":
            i -= 2
            continue
        return i


def rewrite_launches(src):
    out, pos = [], 0
    while True:
        a = src.find("<<<", pos)
        if a < 0:
            out.append(src[pos:])
            return "".join(out)
        b = src.find(">>>", a)
        start = kernel_start(src, a)
        out.append(src[pos:start])
        out.append(f"emu::launch({src[start:a].strip()}, {src[a + 3:b]})")
        pos = b + 3


EXTERN = re.compile(r"extern\s+__shared__\s+(?:__align__\(\d+\)\s+|alignas\(\d+\)\s+)?"
                    r"([\w:<>, ]+?)\s+(\w+)\s*\[\s*\]\s*;")
STATIC = re.compile(r"__shared__\s+(?:__align__\(\d+\)\s+|alignas\(\d+\)\s+)?"
                    r"([\w:<>]+(?:\s+[\w:<>]+)*?)\s+(\w+\s*(?:\[[^\]]+\])*\s*"
                    r"(?:,\s*\w+\s*(?:\[[^\]]+\])*\s*)*);")


def rewrite_shared(src):
    src = EXTERN.sub(lambda m: f"EMU_EXTERN_SHARED({m.group(1)}, {m.group(2)});", src)

    def one(m):
        typ, decls = m.group(1), m.group(2)
        parts = []
        for d in re.finditer(r"(\w+)\s*((?:\[[^\]]+\])*)", decls):
            parts.append(f"EMU_SHARED({typ}, {d.group(1)}, {d.group(2)});")
        return " ".join(parts)

    return STATIC.sub(one, src)


def main():
    src = open(sys.argv[1]).read()
    src = rewrite_shared(rewrite_launches(src))
    if "__shared__" in re.sub(r"//.*|/\*.*?\*/", "", src, flags=re.S):
        raise SystemExit(f"launch_rewrite: {sys.argv[1]}: a __shared__ declaration was not rewritten")
    with open(sys.argv[2], "w") as f:
        f.write(f'#line 1 "{sys.argv[1]}"\n' + src)


if __name__ == "__main__":
    main()
