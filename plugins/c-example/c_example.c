/*
 * CShellJob: a jobctl executor written in C against jobctl_plugin.h.
 *
 * Each job runs its command as a shell line (/bin/sh -c) with posix_spawn,
 * in a process group of its own, in params.cwd when the spec has one, and
 * streams the process's stdout and stderr as Output and Error records,
 * byte-exact. Exit 0 ends the job Completed; another status Failed with
 * the reason "exited with status N: <last line of stderr>"; a signal
 * Failed with "killed by signal N". A stop sends SIGTERM to the group, and
 * SIGKILL after two seconds; the job ends Stopped. Suspend and resume send
 * SIGSTOP and SIGCONT to the group (a stop sends SIGCONT too, so that a
 * suspended group acts on its SIGTERM).
 *
 * Build:  cc -std=c11 -O2 -fPIC -shared -pthread -fvisibility=hidden \
 *            -I../include -o libc_example.so c_example.c
 *
 * One reader thread per job waits on the pipes and the process; the host's
 * calls only take the job's lock. Detached jobs are not kept: releasing a
 * job stops it.
 */
#define _GNU_SOURCE
#include "jobctl_plugin.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Tests build a copy that claims another version, to see it refused. */
#ifndef C_EXAMPLE_ABI_VERSION
#define C_EXAMPLE_ABI_VERSION JOBCTL_ABI_VERSION
#endif

#define TYPE_NAME "CShellJob"
#define GRACE_MS 2000
#define POLL_MS 100

enum state { RUNNING, COMPLETED, FAILED, STOPPED };

static const char *const STATE_NAMES[] = {"Running", "Completed", "Failed", "Stopped"};

struct job {
    pthread_mutex_t lock; /* guards everything below but wake */
    pthread_cond_t changed;
    uint8_t *frames; /* records not yet pulled */
    size_t len, cap;
    enum state state;
    int has_exit, exit_code;
    char reason[256];
    char last_err[160]; /* the last complete line of stderr */
    char err_line[160]; /* the stderr line being read */
    size_t err_line_len;
    int lost;           /* records dropped for lack of memory */
    int stop_requested; /* and when, for the grace period */
    struct timespec stop_at;
    int reaped; /* the process was waited for: its pid is no longer ours */
    pid_t pid;
    int refs; /* the host's handle and the reader thread */

    pthread_mutex_t wake_lock; /* held while calling wake */
    jobctl_wake_fn wake;
    const void *wake_data;
};

/* ---- buffers handed to the host ---------------------------------------- */

static jobctl_buf buf_of(const char *s) {
    jobctl_buf b = {NULL, 0, 0};
    size_t n = strlen(s);
    if (n == 0) return b;
    b.ptr = malloc(n);
    if (b.ptr == NULL) return b;
    memcpy(b.ptr, s, n);
    b.len = b.cap = n;
    return b;
}

static int32_t fail_with(jobctl_buf *err, const char *msg) {
    if (err != NULL) *err = buf_of(msg);
    return JOBCTL_ERR;
}

static void free_buf(jobctl_buf buf) { free(buf.ptr); }

/* ---- a little JSON: find a member, decode a string ---------------------- */

struct span {
    const char *p;
    size_t n;
};

static size_t skip_ws(const char *s, size_t n, size_t i) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    return i;
}

/* One past the end of the JSON value at s[i], or 0 if there is none. */
static size_t skip_value(const char *s, size_t n, size_t i) {
    if (i >= n) return 0;
    if (s[i] == '"') {
        for (i++; i < n; i++) {
            if (s[i] == '\\') i++;
            else if (s[i] == '"') return i + 1;
        }
        return 0;
    }
    if (s[i] == '{' || s[i] == '[') {
        int depth = 0;
        for (; i < n; i++) {
            if (s[i] == '"') {
                size_t end = skip_value(s, n, i);
                if (end == 0) return 0;
                i = end - 1;
            } else if (s[i] == '{' || s[i] == '[') {
                depth++;
            } else if (s[i] == '}' || s[i] == ']') {
                if (--depth == 0) return i + 1;
            }
        }
        return 0;
    }
    size_t start = i; /* a number, true, false or null */
    while (i < n && strchr(",}] \t\r\n", s[i]) == NULL) i++;
    return i > start ? i : 0;
}

/* The value of member `key` of the object `obj`; 0 if absent or malformed. */
static int find_member(struct span obj, const char *key, struct span *value) {
    const char *s = obj.p;
    size_t n = obj.n, i = skip_ws(s, n, 0);
    if (i >= n || s[i] != '{') return 0;
    i = skip_ws(s, n, i + 1);
    if (i < n && s[i] == '}') return 0;
    for (;;) {
        if (i >= n || s[i] != '"') return 0;
        size_t kend = skip_value(s, n, i);
        if (kend == 0) return 0;
        const char *k = s + i + 1;
        size_t klen = kend - i - 2;
        i = skip_ws(s, n, kend);
        if (i >= n || s[i] != ':') return 0;
        i = skip_ws(s, n, i + 1);
        size_t vend = skip_value(s, n, i);
        if (vend == 0) return 0;
        if (klen == strlen(key) && memcmp(k, key, klen) == 0) {
            value->p = s + i;
            value->n = vend - i;
            return 1;
        }
        i = skip_ws(s, n, vend);
        if (i >= n || s[i] != ',') return 0;
        i = skip_ws(s, n, i + 1);
    }
}

static int hex4(const char *p, unsigned *out) {
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p[k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

/* The JSON string `v` decoded to a new NUL-terminated string (UTF-8), or
 * NULL if it is not a string or holds a NUL. */
static char *decode_string(struct span v) {
    if (v.n < 2 || v.p[0] != '"' || v.p[v.n - 1] != '"') return NULL;
    char *out = malloc(v.n); /* decoding never grows a string */
    if (out == NULL) return NULL;
    size_t o = 0;
    for (size_t i = 1; i + 1 < v.n; i++) {
        char c = v.p[i];
        if (c != '\\') {
            out[o++] = c;
            continue;
        }
        if (++i + 1 >= v.n) goto bad;
        switch (v.p[i]) {
        case '"': out[o++] = '"'; break;
        case '\\': out[o++] = '\\'; break;
        case '/': out[o++] = '/'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (i + 5 > v.n - 1 || !hex4(v.p + i + 1, &cp)) goto bad;
            i += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && i + 7 <= v.n - 1 && v.p[i + 1] == '\\' &&
                v.p[i + 2] == 'u' && hex4(v.p + i + 3, &lo) && lo >= 0xdc00 && lo < 0xe000) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                i += 6;
            }
            if (cp == 0) goto bad;
            if (cp < 0x80) {
                out[o++] = (char)cp;
            } else if (cp < 0x800) {
                out[o++] = (char)(0xc0 | (cp >> 6));
                out[o++] = (char)(0x80 | (cp & 0x3f));
            } else if (cp < 0x10000) {
                out[o++] = (char)(0xe0 | (cp >> 12));
                out[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                out[o++] = (char)(0x80 | (cp & 0x3f));
            } else {
                out[o++] = (char)(0xf0 | (cp >> 18));
                out[o++] = (char)(0x80 | ((cp >> 12) & 0x3f));
                out[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                out[o++] = (char)(0x80 | (cp & 0x3f));
            }
            break;
        }
        default: goto bad;
        }
    }
    out[o] = '\0';
    return out;
bad:
    free(out);
    return NULL;
}

/* ---- jobs ---------------------------------------------------------------- */

static void unref(struct job *j) {
    pthread_mutex_lock(&j->lock);
    int last = --j->refs == 0;
    pthread_mutex_unlock(&j->lock);
    if (!last) return;
    free(j->frames);
    pthread_cond_destroy(&j->changed);
    pthread_mutex_destroy(&j->lock);
    pthread_mutex_destroy(&j->wake_lock);
    free(j);
}

/* Tells the host the job changed, unless it released the job. */
static void notify(struct job *j) {
    pthread_mutex_lock(&j->wake_lock);
    if (j->wake != NULL) j->wake(j->wake_data);
    pthread_mutex_unlock(&j->wake_lock);
}

/* Appends one frame; with the lock held. */
static void push_frame(struct job *j, uint8_t stream, const char *data, size_t n) {
    size_t need = j->len + JOBCTL_FRAME_HEAD_LEN + n;
    if (need > j->cap) {
        size_t cap = j->cap ? j->cap : 4096;
        while (cap < need) cap *= 2;
        uint8_t *p = realloc(j->frames, cap);
        if (p == NULL) {
            j->lost = 1;
            return;
        }
        j->frames = p;
        j->cap = cap;
    }
    uint8_t *f = j->frames + j->len;
    uint32_t len = (uint32_t)n;
    f[0] = stream;
    f[1] = JOBCTL_KIND_BYTES;
    for (int k = 0; k < 4; k++) f[2 + k] = (uint8_t)(len >> (8 * k));
    memcpy(f + JOBCTL_FRAME_HEAD_LEN, data, n);
    j->len = need;
}

/* Keeps the last complete stderr line, printable ASCII only (it goes into
 * JSON); with the lock held. */
static void track_err_line(struct job *j, const char *data, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char c = data[i];
        if (c == '\n') {
            if (j->err_line_len > 0) {
                memcpy(j->last_err, j->err_line, j->err_line_len);
                j->last_err[j->err_line_len] = '\0';
            }
            j->err_line_len = 0;
        } else if (j->err_line_len + 1 < sizeof j->err_line) {
            j->err_line[j->err_line_len++] = (c >= 0x20 && c < 0x7f) ? c : '?';
        }
    }
}

static long ms_since(const struct timespec *t) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t->tv_sec) * 1000L + (now.tv_nsec - t->tv_nsec) / 1000000L;
}

/* SIGKILL for a job that outlived its grace period; with the lock held. */
static void kill_if_overdue(struct job *j) {
    if (j->stop_requested && !j->reaped && ms_since(&j->stop_at) >= GRACE_MS)
        kill(-j->pid, SIGKILL);
}

struct reader_args {
    struct job *job;
    int out_fd, err_fd;
};

static void *reader(void *arg) {
    struct reader_args a = *(struct reader_args *)arg;
    free(arg);
    struct job *j = a.job;
    struct pollfd fds[2] = {{a.out_fd, POLLIN, 0}, {a.err_fd, POLLIN, 0}};
    int open_fds = 2;
    char buf[65536];
    while (open_fds > 0) {
        int n = poll(fds, 2, POLL_MS);
        if (n < 0 && errno != EINTR) break;
        for (int i = 0; i < 2 && n > 0; i++) {
            if (fds[i].fd < 0 || fds[i].revents == 0) continue;
            ssize_t r = read(fds[i].fd, buf, sizeof buf);
            if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            if (r <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
                continue;
            }
            pthread_mutex_lock(&j->lock);
            push_frame(j, i == 0 ? JOBCTL_STREAM_OUTPUT : JOBCTL_STREAM_ERROR, buf, (size_t)r);
            if (i == 1) track_err_line(j, buf, (size_t)r);
            pthread_cond_broadcast(&j->changed);
            pthread_mutex_unlock(&j->lock);
            notify(j);
        }
        pthread_mutex_lock(&j->lock);
        kill_if_overdue(j);
        pthread_mutex_unlock(&j->lock);
    }
    for (int i = 0; i < 2; i++)
        if (fds[i].fd >= 0) close(fds[i].fd);

    /* Wait for the end without reaping, so that a stop never signals a pid
     * that is no longer the job's; then reap. */
    siginfo_t info;
    long pause_ns = 50 * 1000L; /* the end is usually a moment away: back off from 50 us */
    for (;;) {
        memset(&info, 0, sizeof info);
        int r = waitid(P_PID, (id_t)j->pid, &info, WEXITED | WNOHANG | WNOWAIT);
        if (r == 0 && info.si_pid == j->pid) break;
        if (r < 0 && errno != EINTR) break;
        pthread_mutex_lock(&j->lock);
        kill_if_overdue(j);
        pthread_mutex_unlock(&j->lock);
        struct timespec pause = {0, pause_ns};
        nanosleep(&pause, NULL);
        if (pause_ns < 10 * 1000000L) pause_ns *= 2;
    }
    pthread_mutex_lock(&j->lock);
    j->reaped = 1;
    pthread_mutex_unlock(&j->lock);
    int status = 0;
    pid_t got;
    do got = waitpid(j->pid, &status, 0);
    while (got < 0 && errno == EINTR);

    pthread_mutex_lock(&j->lock);
    if (got < 0) {
        j->state = FAILED;
        snprintf(j->reason, sizeof j->reason, "cannot wait for the process: %s", strerror(errno));
    } else if (WIFEXITED(status)) {
        j->has_exit = 1;
        j->exit_code = WEXITSTATUS(status);
        if (j->exit_code == 0) {
            j->state = COMPLETED;
        } else {
            j->state = FAILED;
            snprintf(j->reason, sizeof j->reason, "exited with status %d%s%s", j->exit_code,
                     j->last_err[0] ? ": " : "", j->last_err);
        }
    } else {
        j->state = FAILED;
        snprintf(j->reason, sizeof j->reason, "killed by signal %d", WTERMSIG(status));
    }
    if (j->stop_requested) j->state = STOPPED;
    if (j->lost && j->state == COMPLETED) {
        j->state = FAILED;
        snprintf(j->reason, sizeof j->reason, "out of memory: records were lost");
    }
    pthread_cond_broadcast(&j->changed);
    pthread_mutex_unlock(&j->lock);
    notify(j);
    unref(j);
    return NULL;
}

/* Spawns `sh -c command` in `cwd` (or here) with stdout and stderr on the
 * pipes; 0 or an errno. */
static int spawn(const char *command, const char *cwd, int out_w, int err_w, pid_t *pid) {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc != 0) return rc;
    rc = posix_spawnattr_init(&attr);
    if (rc != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return rc;
    }
    sigset_t none, dfl;
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE); /* the host ignores it; ignoring is inherited */
    if (rc == 0) rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&fa, out_w, 1);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&fa, err_w, 2);
    if (rc == 0 && cwd != NULL) rc = posix_spawn_file_actions_addchdir_np(&fa, cwd);
    if (rc == 0) rc = posix_spawnattr_setpgroup(&attr, 0);
    if (rc == 0) rc = posix_spawnattr_setsigmask(&attr, &none);
    if (rc == 0) rc = posix_spawnattr_setsigdefault(&attr, &dfl);
    if (rc == 0)
        rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                                 POSIX_SPAWN_SETSIGDEF);
    if (rc == 0) {
        char *argv[] = {"sh", "-c", (char *)command, NULL};
        rc = posix_spawn(pid, "/bin/sh", &fa, &attr, argv, environ);
    }
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

static int32_t start(const void *instance, const uint8_t *spec, size_t spec_len,
                     jobctl_wake_fn wake, const void *wake_data, void **job_out,
                     jobctl_buf *err) {
    (void)instance;
    if (job_out == NULL) return fail_with(err, "a null job handle slot");
    struct span doc = {(const char *)spec, spec_len}, v, params;
    char msg[256];
    if (spec == NULL || !find_member(doc, "command", &v))
        return fail_with(err, "a malformed job spec: no command");
    char *command = decode_string(v);
    if (command == NULL) return fail_with(err, "a malformed job spec: the command is not a string");
    char *cwd = NULL;
    if (find_member(doc, "params", &params) && find_member(params, "cwd", &v))
        cwd = decode_string(v);

    struct job *j = calloc(1, sizeof *j);
    int out_p[2] = {-1, -1}, err_p[2] = {-1, -1};
    struct reader_args *args = malloc(sizeof *args);
    int rc = (j == NULL || args == NULL) ? ENOMEM : 0;
    if (rc == 0 && (pipe2(out_p, O_CLOEXEC) != 0 || pipe2(err_p, O_CLOEXEC) != 0)) rc = errno;
    pid_t pid = 0;
    if (rc == 0) rc = spawn(command, cwd, out_p[1], err_p[1], &pid);
    free(command);
    free(cwd);
    if (out_p[1] >= 0) close(out_p[1]);
    if (err_p[1] >= 0) close(err_p[1]);
    if (rc != 0) {
        if (out_p[0] >= 0) close(out_p[0]);
        if (err_p[0] >= 0) close(err_p[0]);
        free(j);
        free(args);
        snprintf(msg, sizeof msg, "cannot start /bin/sh: %s", strerror(rc));
        return fail_with(err, msg);
    }

    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutex_init(&j->lock, &ma);
    pthread_mutex_init(&j->wake_lock, &ma);
    pthread_mutexattr_destroy(&ma);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->changed, &ca);
    pthread_condattr_destroy(&ca);
    j->state = RUNNING;
    j->pid = pid;
    j->refs = 2;
    j->wake = wake;
    j->wake_data = wake_data;
    args->job = j;
    args->out_fd = out_p[0];
    args->err_fd = err_p[0];

    pthread_attr_t ta;
    pthread_t thread;
    pthread_attr_init(&ta);
    pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&thread, &ta, reader, args);
    pthread_attr_destroy(&ta);
    if (rc != 0) {
        /* No reader: end the process here and give up the job. */
        kill(-pid, SIGKILL);
        close(out_p[0]);
        close(err_p[0]);
        free(args);
        waitpid(pid, NULL, 0);
        j->refs = 1;
        unref(j);
        snprintf(msg, sizeof msg, "cannot start a reader thread: %s", strerror(rc));
        return fail_with(err, msg);
    }
    *job_out = j;
    return JOBCTL_OK;
}

static int32_t pull(const void *handle, uint64_t timeout_ms, jobctl_buf *out) {
    struct job *j = (struct job *)handle;
    if (j == NULL || out == NULL) return fail_with(out, "a null job handle");
    pthread_mutex_lock(&j->lock);
    if (j->len == 0 && j->state == RUNNING && timeout_ms > 0) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += (time_t)(timeout_ms / 1000);
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (j->len == 0 && j->state == RUNNING)
            if (pthread_cond_timedwait(&j->changed, &j->lock, &until) == ETIMEDOUT) break;
    }
    int32_t code = j->state == RUNNING ? JOBCTL_PULL_RUNNING : JOBCTL_PULL_FINISHED;
    out->ptr = j->frames;
    out->len = j->len;
    out->cap = j->cap;
    j->frames = NULL;
    j->len = j->cap = 0;
    pthread_mutex_unlock(&j->lock);
    return code;
}

/* Appends `s` to `o` as a JSON string; `s` is printable ASCII. */
static void json_string(char *o, size_t cap, const char *s) {
    size_t n = strlen(o);
    if (n + 1 < cap) o[n++] = '"';
    for (; *s && n + 3 < cap; s++) {
        if (*s == '"' || *s == '\\') o[n++] = '\\';
        o[n++] = *s;
    }
    if (n + 1 < cap) o[n++] = '"';
    o[n] = '\0';
}

static int32_t status(const void *handle, jobctl_buf *out) {
    struct job *j = (struct job *)handle;
    if (j == NULL) return fail_with(out, "a null job handle");
    char json[1024] = "{\"state\":\"";
    pthread_mutex_lock(&j->lock);
    strcat(json, STATE_NAMES[j->state]);
    strcat(json, "\",\"reason\":");
    if (j->reason[0]) json_string(json, sizeof json - 128, j->reason);
    else strcat(json, "null");
    size_t n = strlen(json);
    if (j->has_exit) snprintf(json + n, sizeof json - n, ",\"exit_code\":%d", j->exit_code);
    else snprintf(json + n, sizeof json - n, ",\"exit_code\":null");
    pthread_mutex_unlock(&j->lock);
    strcat(json, ",\"location\":\"localhost\"}");
    if (out != NULL) *out = buf_of(json);
    return JOBCTL_OK;
}

/* Requests a stop; with the lock held. */
static void request_stop(struct job *j) {
    if (j->stop_requested || j->state != RUNNING) return;
    j->stop_requested = 1;
    clock_gettime(CLOCK_MONOTONIC, &j->stop_at);
    if (!j->reaped) {
        kill(-j->pid, SIGTERM);
        kill(-j->pid, SIGCONT);
    }
}

/* SIGSTOP or SIGCONT to a running job's group. */
static int32_t signal_running(const void *handle, int sig, jobctl_buf *err) {
    struct job *j = (struct job *)handle;
    if (j == NULL) return fail_with(err, "no job");
    pthread_mutex_lock(&j->lock);
    if (j->state == RUNNING && !j->reaped) kill(-j->pid, sig);
    pthread_mutex_unlock(&j->lock);
    return JOBCTL_OK;
}

static int32_t suspend(const void *handle, jobctl_buf *err) {
    return signal_running(handle, SIGSTOP, err);
}

static int32_t resume_suspended(const void *handle, jobctl_buf *err) {
    return signal_running(handle, SIGCONT, err);
}

static int32_t stop(const void *handle) {
    struct job *j = (struct job *)handle;
    if (j == NULL) return JOBCTL_ERR;
    pthread_mutex_lock(&j->lock);
    request_stop(j);
    pthread_mutex_unlock(&j->lock);
    return JOBCTL_OK;
}

static void free_job(void *handle) {
    struct job *j = handle;
    if (j == NULL) return;
    pthread_mutex_lock(&j->wake_lock);
    j->wake = NULL; /* from here on, no wake-up */
    pthread_mutex_unlock(&j->wake_lock);
    pthread_mutex_lock(&j->lock);
    request_stop(j);
    pthread_mutex_unlock(&j->lock);
    unref(j); /* the reader thread frees the job if it still runs */
}

static int32_t describe(const void *instance, jobctl_buf *out) {
    (void)instance;
    if (out == NULL) return JOBCTL_ERR;
    *out = buf_of("{\"type_name\":\"" TYPE_NAME "\",\"default_throttle\":null,"
                  "\"reports_start\":false,\"can_suspend\":true}");
    return out->ptr != NULL ? JOBCTL_OK : JOBCTL_ERR;
}

static int32_t location(const void *instance, const uint8_t *spec, size_t spec_len,
                        jobctl_buf *out) {
    (void)instance;
    (void)spec;
    (void)spec_len;
    if (out != NULL) *out = buf_of("localhost");
    return JOBCTL_OK;
}

static int32_t resumable(const void *instance, const uint8_t *info, size_t info_len,
                         jobctl_buf *err) {
    (void)instance;
    (void)info;
    (void)info_len;
    (void)err;
    return 0; /* a new session never takes over another's processes */
}

static int32_t resume(const void *instance, const uint8_t *info, size_t info_len,
                      jobctl_wake_fn wake, const void *wake_data, void **job,
                      jobctl_buf *err) {
    (void)instance;
    (void)info;
    (void)info_len;
    (void)wake;
    (void)wake_data;
    (void)job;
    return fail_with(err, TYPE_NAME " jobs cannot be resumed");
}

static const jobctl_vtable VTABLE = {
    .describe = describe,
    .location = location,
    .start = start,
    .resumable = resumable,
    .resume = resume,
    .pull = pull,
    .status = status,
    .stop = stop,
    .free_job = free_job,
    .free_buf = free_buf,
    .suspend = suspend,
    .resume_suspended = resume_suspended,
};

#define STR(s) {(const uint8_t *)(s), sizeof(s) - 1}

static const jobctl_header HEADER = {
    .magic = JOBCTL_MAGIC,
    .abi_version = C_EXAMPLE_ABI_VERSION,
    .header_size = sizeof(jobctl_header),
    .vtable_size = sizeof(jobctl_vtable),
    .reserved = 0,
    .plugin_name = STR("c-example"),
    .plugin_version = STR("0.1.0"),
    .instance = NULL,
    .vtable = &VTABLE,
};

JOBCTL_EXPORT const jobctl_header *jobs_plugin_header(void) { return &HEADER; }
