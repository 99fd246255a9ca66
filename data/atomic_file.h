/* Whole-file reads, and whole-file writes that a reader never sees half done: the bytes go to a fresh
 * temporary file beside the target, are fsync'd, the file is renamed over the target,
 * and the folder is fsync'd so the new name survives a crash. On failure the
 * temporary file is removed and the target is untouched. */
#ifndef EHRTUNE_ATOMIC_FILE_H
#define EHRTUNE_ATOMIC_FILE_H

#include <stddef.h>

#include "data/error.h"

enum {
    ET_FILE_PRIVATE = 1, /* mode 0600 whatever the umask (files derived from patient data) */
};

/* flags: 0 (mode 0666 & ~umask) or ET_FILE_PRIVATE. `what` names the file's role in
 * messages ("manifest", "config.json", ...). */
int et_write_file_atomic(const char *path, const void *data, size_t len, int flags,
                         const char *what, et_error *err);

/* write(2) until all n bytes are written, retrying on EINTR. 0, or -1 with errno set
 * (EIO where write wrote nothing and said no error). For the streaming writers
 * (safetensors, GGUF, merged shards) that cannot hold a whole file in memory. */
int et_write_all(int fd, const void *p, size_t n);

/* mkdir -p: path and every missing parent, created with mode 0700 (outputs derive from
 * patient data); folders that exist are left as they are, except that private_leaf
 * sets path itself to 0700 (a run directory). */
int et_make_dirs(const char *path, int private_leaf, et_error *err);

/* The whole of a regular file of at most `max` bytes, NUL-terminated (malloc'd; the
 * caller frees it), or NULL with err set (missing, not a regular file, too big, read
 * error). For the small text and JSON files a run keeps (recipes, manifests). */
char *et_read_file_text(const char *path, size_t max, et_error *err);

#endif
