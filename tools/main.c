/* ehrtune: the one CLI. Each subcommand lives in tools/cmd_<name>.c and returns
 * the process exit code; only this layer prints errors and exits. */
#include <stdio.h>
#include <string.h>

#include "tools/commands.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
    const char *help;
} command;

static const command COMMANDS[] = {
    /* one line per subcommand; keep sorted by name */
    {"bench", cmd_bench, "time training steps on random weights for a model shape"},
    {"detokenize", cmd_detokenize, "token ids on stdin -> text (HF tokenizer.json)"},
    {"demo", cmd_demo, "tiny model + synthetic corpus + LoRA training on the CPU"},
    {"export", cmd_export, "a finished run -> PEFT adapter, merged model and/or GGUF LoRA"},
    {"forward", cmd_forward, "one forward+backward pass: logits, loss, LoRA gradients"},
    {"ingest", cmd_ingest, "JSONL documents -> corpus HDF5 (tokens, masks, patients, splits)"},
    {"inspect", cmd_inspect, "print the memory plan of a recipe (--plan)"},
    {"phi-scan", cmd_phi_scan, "count PHI-like identifiers in a JSONL file (kinds, lines; never the text)"},
    {"privacy", cmd_privacy, "epsilon for (q, sigma, steps, delta), or sigma for a target epsilon"},
    {"synth", cmd_synth, "deterministic synthetic de-identified EHR notes (JSONL)"},
    {"tokenize", cmd_tokenize, "text on stdin -> token ids, as HF tokenizers gives them"},
    {"train", cmd_train, "fine-tune LoRA as a YAML recipe says"},
    {"version", cmd_version, "print the version"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: ehrtune <command> [args]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        fprintf(f, "  %-12s %s\n", COMMANDS[i].name, COMMANDS[i].help);
    fprintf(f, "\n'ehrtune <command> --help' describes one command.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) return COMMANDS[i].run(argc - 1, argv + 1);
    fprintf(stderr, "ehrtune: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}

int cmd_version(int argc, char **argv) {
    (void)argc; (void)argv;
    printf("ehrtune %s\n", EHRTUNE_VERSION);
    return 0;
}
