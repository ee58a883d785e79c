/*
 * jobctl_plugin.h: the jobctl executor plugin ABI, version 5, in C.
 *
 * A plugin is a shared library that exports one function,
 *
 *     JOBCTL_EXPORT const jobctl_header *jobs_plugin_header(void);
 *
 * returning a pointer to a static header: who the plugin is and its table
 * of functions. jobctl opens the library, checks the header's magic, ABI
 * version, header size and table size before calling anything else, then
 * calls describe() once and runs jobs through the table. A plugin built
 * against ABI version N loads in every jobctl that speaks version N,
 * whatever compiler or language built either side.
 *
 * This file is the C spelling of jobs-core/src/plugin/abi.rs; a test of
 * plugins/c-example compiles it and compares every size, offset and
 * constant with the Rust definitions. plugins/README.md explains the
 * contract; plugins/c-example/c_example.c is a complete plugin.
 *
 * The promises, in short:
 * - Who frees what. Buffers the plugin writes through an out/err pointer
 *   are the plugin's; the host gives each back once through free_buf.
 *   Bytes the host passes in are borrowed for the call only. The header,
 *   its strings, the instance and the table are static and never freed;
 *   the library is never unloaded.
 * - Threads. Any function may be called from any host thread. Calls about
 *   one job (pull, status, stop, suspend, resume_suspended, free_job)
 *   never overlap; calls about different jobs and the plugin-wide
 *   functions may run at once. No call blocks for long: run jobs on
 *   threads of your own.
 * - Suspend. A plugin whose description says "can_suspend": true fills
 *   suspend and resume_suspended; one that cannot leaves them NULL and
 *   jobctl refuses to suspend its jobs, naming the type. jobctl owns the
 *   states: keep reporting "Running" while suspended. A stop of a
 *   suspended job is stop (end the work though it was paused), then
 *   resume_suspended.
 * - Wake-up. Call wake(wake_data), from any thread, whenever a job has new
 *   records or a new state (at least once after it finished), until
 *   free_job returns; never after. It returns at once and never calls into
 *   the plugin, so it may be called with your locks held.
 * - Failures. A failing function returns JOBCTL_ERR and writes a UTF-8
 *   message to its out/err buffer. Nothing ever ends the process.
 * - Records. pull hands out consecutive frames: stream (1 byte), kind
 *   (1 byte), length (4 bytes, little endian), then that many bytes.
 * - JSON. Specs, descriptions and statuses are JSON objects (UTF-8).
 *   Ignore members you do not know; more may come within one version.
 */
#ifndef JOBCTL_PLUGIN_H
#define JOBCTL_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes. */
#define JOBCTL_ABI_VERSION 5

/* The header's first 8 bytes: "JOBSPLG" and a NUL. */
#define JOBCTL_MAGIC "JOBSPLG"

/* The symbol a plugin exports. */
#define JOBCTL_ENTRY_SYMBOL "jobs_plugin_header"

/* Marks the entry point visible when building with -fvisibility=hidden. */
#if defined(__GNUC__) || defined(__clang__)
#define JOBCTL_EXPORT __attribute__((visibility("default")))
#else
#define JOBCTL_EXPORT
#endif

/* Return codes. */
#define JOBCTL_OK 0
#define JOBCTL_ERR (-1)

/* pull's statuses (in the low byte of its return value). */
#define JOBCTL_PULL_RUNNING 0     /* the job runs; the host pulls when woken */
#define JOBCTL_PULL_BLOCKED 1     /* the job is Blocked (waits for input) */
#define JOBCTL_PULL_FINISHED 2    /* finished, and this was the last batch */
#define JOBCTL_PULL_AGAIN 3       /* batch cut short: pull again at once */
#define JOBCTL_PULL_NOT_STARTED 4 /* queued (only if describe says reports_start) */
/* Or-ed into pull's status: the location changed; status tells the new one. */
#define JOBCTL_PULL_LOCATION 0x100
#define JOBCTL_PULL_STATUS_MASK 0xff

/* Record frames: the head's length, stream numbers and payload kinds. */
#define JOBCTL_FRAME_HEAD_LEN 6
#define JOBCTL_STREAM_OUTPUT 0
#define JOBCTL_STREAM_ERROR 1
#define JOBCTL_STREAM_WARNING 2
#define JOBCTL_STREAM_VERBOSE 3
#define JOBCTL_STREAM_DEBUG 4
#define JOBCTL_STREAM_INFORMATION 5
#define JOBCTL_STREAM_PROGRESS 6
#define JOBCTL_KIND_BYTES 0    /* raw bytes, byte-exact */
#define JOBCTL_KIND_TEXT 1     /* UTF-8 text */
#define JOBCTL_KIND_VALUE 2    /* any JSON value */
#define JOBCTL_KIND_PROGRESS 3 /* JSON {"percent": n, "activity": s, "status": s} */
#define JOBCTL_KIND_ERROR 4    /* JSON {"message": s, "category": s, "details": any} */

/* A static UTF-8 string of the plugin (not NUL-terminated). */
typedef struct jobctl_str {
    const uint8_t *ptr;
    size_t len;
} jobctl_str;

/* Bytes the plugin hands to the host; the host gives them back through
 * free_buf. cap is the plugin's own bookkeeping. An empty buffer may have
 * a null ptr. */
typedef struct jobctl_buf {
    uint8_t *ptr;
    size_t len;
    size_t cap;
} jobctl_buf;

/* The host's wake-up: call it with the data given to start/resume. */
typedef void (*jobctl_wake_fn)(const void *data);

/* The functions of a plugin. "instance" is the header's instance pointer;
 * "job" a handle that start/resume wrote. */
typedef struct jobctl_vtable {
    /* Writes {"type_name": s, "default_throttle": n|null,
     * "reports_start": bool, "can_suspend": bool} to out ("can_suspend"
     * optional, false when absent). Called once, after the header check. */
    int32_t (*describe)(const void *instance, jobctl_buf *out);
    /* Writes the location (UTF-8, e.g. "localhost") of a job of the spec
     * (JSON) to out. */
    int32_t (*location)(const void *instance, const uint8_t *spec, size_t spec_len,
                        jobctl_buf *out);
    /* Starts a job of the spec: {"type_name": s, "name": s|null,
     * "command": s, "params": any, "location": s|null, "detached": bool,
     * "instance_id": s}. Writes its handle to *job and returns JOBCTL_OK,
     * or a message to err and returns JOBCTL_ERR (no handle then). */
    int32_t (*start)(const void *instance, const uint8_t *spec, size_t spec_len,
                     jobctl_wake_fn wake, const void *wake_data, void **job,
                     jobctl_buf *err);
    /* Whether the job row (JSON) of a previous session can be taken over:
     * 1, 0, or JOBCTL_ERR with a message in err. */
    int32_t (*resumable)(const void *instance, const uint8_t *info, size_t info_len,
                         jobctl_buf *err);
    /* Takes over that job, as start starts one. */
    int32_t (*resume)(const void *instance, const uint8_t *info, size_t info_len,
                      jobctl_wake_fn wake, const void *wake_data, void **job,
                      jobctl_buf *err);
    /* Moves the job's pending records (frames) to out, waiting up to
     * timeout_ms for one if there are none. Returns a JOBCTL_PULL_* status
     * read before the records were taken, or JOBCTL_ERR (message in out). */
    int32_t (*pull)(const void *job, uint64_t timeout_ms, jobctl_buf *out);
    /* Writes {"state": s, "reason": s|null, "exit_code": n|null,
     * "location": s} to out. A finished job's state is "Completed",
     * "Failed" or "Stopped"; before: "NotStarted", "Running", "Blocked". */
    int32_t (*status)(const void *job, jobctl_buf *out);
    /* Requests a stop (idempotent) and returns at once; the job then ends
     * "Stopped". */
    int32_t (*stop)(const void *job);
    /* Releases the handle: stops the job if it still runs (a detached job
     * the host did not stop may go on); no wake-up follows its return. */
    void (*free_job)(void *job);
    /* Frees a buffer the plugin handed out (the struct is passed by value). */
    void (*free_buf)(jobctl_buf buf);
    /* Pauses the job's work (e.g. SIGSTOP to its process group) and returns
     * once it is paused: JOBCTL_OK, or JOBCTL_ERR with a message in err.
     * NULL when the plugin cannot suspend. (ABI 5) */
    int32_t (*suspend)(const void *job, jobctl_buf *err);
    /* Lets a suspended job's work go on (SIGCONT), as suspend pauses it.
     * NULL when the plugin cannot suspend. (ABI 5) */
    int32_t (*resume_suspended)(const void *job, jobctl_buf *err);
} jobctl_vtable;

/* What jobs_plugin_header returns. */
typedef struct jobctl_header {
    uint8_t magic[8];           /* JOBCTL_MAGIC with its NUL */
    uint32_t abi_version;       /* JOBCTL_ABI_VERSION */
    uint32_t header_size;       /* sizeof(jobctl_header) */
    uint32_t vtable_size;       /* sizeof(jobctl_vtable) */
    uint32_t reserved;          /* zero */
    jobctl_str plugin_name;
    jobctl_str plugin_version;
    const void *instance;       /* passed back to the plugin-wide functions; may be NULL */
    const jobctl_vtable *vtable;
} jobctl_header;

/* The one symbol a plugin defines. */
JOBCTL_EXPORT const jobctl_header *jobs_plugin_header(void);

#ifdef __cplusplus
}
#endif

#endif /* JOBCTL_PLUGIN_H */
