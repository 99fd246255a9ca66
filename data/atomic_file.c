#include "data/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static int fsync_parent(const char *path) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    if (rc != 0 && errno == EINVAL) rc = 0; /* the filesystem cannot sync folders */
    close(fd);
    return rc;
}

int et_write_file_atomic(const char *path, const void *data, size_t len, int flags,
                         const char *what, et_error *err) {
    /* A name no one else uses (pid + counter), created exclusively with 0600 or the
     * usual 0666 & ~umask. */
    static unsigned counter;
    char tmp[PATH_MAX];
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < 100; tries++) {
        unsigned c = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
        if (snprintf(tmp, sizeof tmp, "%s.tmp-%ld-%u", path, (long)getpid(), c) >= (int)sizeof tmp)
            return et_fail(err, "%s: path too long", path);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                  (flags & ET_FILE_PRIVATE) ? 0600 : 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0)
        return et_fail(err, "%s: cannot create a temporary file beside it (%s); check that "
                            "the folder exists and is writable",
                       path, strerror(errno));
    const char *step = et_write_all(fd, data, len) ? "write" : NULL;
    if (!step && fsync(fd) != 0) step = "fsync";
    int e = errno;
    if (close(fd) != 0 && !step) {
        step = "close";
        e = errno;
    }
    if (!step && rename(tmp, path) != 0) {
        step = "rename into place";
        e = errno;
    }
    if (step) {
        unlink(tmp);
        return et_fail(err, "%s: cannot %s the %s (%s) — disk full?; nothing was written", path,
                       step, what, strerror(e));
    }
    if (fsync_parent(path) != 0)
        return et_fail(err, "%s: written, but its folder could not be fsync'd (%s); the %s may "
                            "not survive a crash",
                       path, strerror(errno), what);
    return 0;
}

int et_make_dirs(const char *path, int private_leaf, et_error *err) {
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return et_fail(err, "%s: path too long", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return et_fail(err, "%s: cannot create directory (%s)", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return et_fail(err, "%s: cannot create directory (%s)", tmp, strerror(errno));
    if (private_leaf && chmod(tmp, 0700) != 0)
        return et_fail(err, "%s: cannot set mode 0700 (%s)", tmp, strerror(errno));
    return 0;
}

int et_write_all(int fd, const void *p, size_t n) {
    const unsigned char *b = p;
    while (n) {
        ssize_t k = write(fd, b, n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -1;
        if (k == 0) return errno = EIO, -1;
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

char *et_read_file_text(const char *path, size_t max, et_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return et_fail(err, "%s: cannot open (%s)", path, strerror(errno)), NULL;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
        fclose(f);
        return et_fail(err, "%s: not a regular file of at most %zu bytes", path, max), NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    const int bad = !buf || got != (size_t)st.st_size || ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return et_fail(err, "%s: read failed", path), NULL;
    }
    buf[got] = 0;
    return buf;
}
