/* pool.c — worker processes for commands that run independent jobs in
 * parallel (qjit search's trials): each worker is this same executable started
 * afresh (posix_spawn of /proc/self/exe, so it inherits no OpenMP or CUDA state
 * from the driver), talking over two pipes: requests on its stdin, replies on
 * its stdout. Messages are fixed-size binary records (the two ends are the same
 * binary). With Open MPI (built with QJ_HAVE_MPI), the same pool runs over MPI
 * ranks instead: rank 0 drives, ranks 1.. are the workers, possibly on other
 * hosts, started by mpirun. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#ifdef QJ_HAVE_MPI
#include <mpi.h>
#endif

extern char **environ;

struct cli_pool {
    int n, mpi;     /* mpi: worker k is MPI rank k + 1 */
    size_t stop;    /* mpi: bytes of the first record of a request (sent zeroed to stop a worker) */
    pid_t *pid;
    int *to, *from; /* the driver's ends: requests to worker k, its replies */
};

qj_status cli_pool_start(cli_pool **out, int n, int argc, char *const *argv, const char *slot_opt, const char *env1) {
    *out = NULL;
    cli_pool *p = calloc(1, sizeof *p);
    char **args = calloc((size_t)argc + 4, sizeof *args);
    size_t ne = 0;
    while (environ[ne]) ne++;
    char **envp = calloc(ne + 2, sizeof *envp);
    if (!p || !args || !envp) {
        free(p);
        free(args);
        free(envp);
        return qj_fail(QJ_ERR_NOMEM, "out of memory");
    }
    p->pid = calloc((size_t)n, sizeof *p->pid);
    p->to = malloc((size_t)n * sizeof *p->to);
    p->from = malloc((size_t)n * sizeof *p->from);
    qj_status st = p->pid && p->to && p->from ? QJ_OK : qj_fail(QJ_ERR_NOMEM, "out of memory");
    for (int k = 0; p->to && k < n; k++) p->to[k] = p->from[k] = -1;
    /* the environment, with env1 ("NAME=value") added unless NAME is set already */
    size_t m = 0;
    for (size_t i = 0; i < ne; i++) envp[m++] = environ[i];
    if (env1) {
        const char *eq = strchr(env1, '=');
        int have = 0;
        for (size_t i = 0; eq && i < ne; i++) have |= !strncmp(environ[i], env1, (size_t)(eq - env1 + 1));
        if (!have) envp[m++] = (char *)env1;
    }
    args[0] = (char *)"/proc/self/exe";
    for (int i = 0; i < argc; i++) args[i + 1] = argv[i];
    char slot[16];
    args[argc + 1] = (char *)slot_opt;
    args[argc + 2] = slot;
    p->n = n;
    for (int k = 0; !st && k < n; k++) {
        int a[2], b[2]; /* a: requests (driver writes a[1]); b: replies (driver reads b[0]) */
        if (pipe2(a, O_CLOEXEC) != 0) {
            st = qj_fail(QJ_ERR_IO, "worker %d: pipe: %s", k, strerror(errno));
            break;
        }
        if (pipe2(b, O_CLOEXEC) != 0) {
            close(a[0]);
            close(a[1]);
            st = qj_fail(QJ_ERR_IO, "worker %d: pipe: %s", k, strerror(errno));
            break;
        }
        snprintf(slot, sizeof slot, "%d", k);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, a[0], 0);
        posix_spawn_file_actions_adddup2(&fa, b[1], 1);
        const int rc = posix_spawn(&p->pid[k], "/proc/self/exe", &fa, NULL, args, envp);
        posix_spawn_file_actions_destroy(&fa);
        close(a[0]);
        close(b[1]);
        p->to[k] = a[1];
        p->from[k] = b[0];
        if (rc != 0) {
            p->pid[k] = 0;
            st = qj_fail(QJ_ERR_IO, "worker %d: cannot start /proc/self/exe: %s", k, strerror(rc));
        }
    }
    free(args);
    free(envp);
    if (st) {
        cli_pool_stop(p, 1);
        return st;
    }
    signal(SIGPIPE, SIG_IGN); /* a worker that died: a write error, not the driver's death */
    *out = p;
    return QJ_OK;
}

static qj_status xfer(int fd, void *buf, size_t len, int writing, int *eof) {
    size_t done = 0;
    while (done < len) {
        const ssize_t r = writing ? write(fd, (char *)buf + done, len - done) : read(fd, (char *)buf + done, len - done);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return qj_fail(QJ_ERR_IO, "%s", strerror(errno));
        if (r == 0) {
            if (eof) *eof = done == 0;
            return qj_fail(QJ_ERR_IO, "the other end closed%s", done ? " mid-message" : "");
        }
        done += (size_t)r;
    }
    return QJ_OK;
}

qj_status cli_pool_send(cli_pool *p, int k, const void *buf, size_t len) {
#ifdef QJ_HAVE_MPI
    if (p->mpi)
        return MPI_Send(buf, (int)len, MPI_BYTE, k + 1, 0, MPI_COMM_WORLD) == MPI_SUCCESS
                   ? QJ_OK
                   : qj_fail(QJ_ERR_IO, "worker %d (MPI rank %d): send failed", k, k + 1);
#endif
    qj_status s = xfer(p->to[k], (void *)buf, len, 1, NULL);
    return s ? qj_fail_context(s, "worker %d (pid %d)", k, (int)p->pid[k]) : QJ_OK;
}

qj_status cli_pool_recv(cli_pool *p, int k, void *buf, size_t len) {
#ifdef QJ_HAVE_MPI
    if (p->mpi)
        return MPI_Recv(buf, (int)len, MPI_BYTE, k + 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE) == MPI_SUCCESS
                   ? QJ_OK
                   : qj_fail(QJ_ERR_IO, "worker %d (MPI rank %d): receive failed", k, k + 1);
#endif
    qj_status s = xfer(p->from[k], buf, len, 0, NULL);
    return s ? qj_fail_context(s, "worker %d (pid %d) ended without its reply", k, (int)p->pid[k]) : QJ_OK;
}

void cli_pool_stop(cli_pool *p, int kill_now) {
    if (!p) return;
#ifdef QJ_HAVE_MPI
    if (p->mpi) {
        if (kill_now) MPI_Abort(MPI_COMM_WORLD, 1); /* ends every rank */
        for (int k = 0; k < p->n; k++) { /* the end of the requests: a zero record of p->stop bytes */
            char *z = calloc(1, p->stop);
            if (z) MPI_Send(z, (int)p->stop, MPI_BYTE, k + 1, 0, MPI_COMM_WORLD);
            free(z);
        }
        free(p);
        return;
    }
#endif
    for (int k = 0; k < p->n; k++) {
        if (p->to && p->to[k] >= 0) close(p->to[k]); /* end of requests: the worker exits */
        if (kill_now && p->pid && p->pid[k] > 0) kill(p->pid[k], SIGTERM);
    }
    for (int k = 0; k < p->n; k++) {
        if (p->pid && p->pid[k] > 0) waitpid(p->pid[k], NULL, 0);
        if (p->from && p->from[k] >= 0) close(p->from[k]);
    }
    free(p->pid);
    free(p->to);
    free(p->from);
    free(p);
}

qj_status cli_worker_read(int fd, void *buf, size_t len, int *eof) {
    *eof = 0;
#ifdef QJ_HAVE_MPI
    if (fd < 0)
        return MPI_Recv(buf, (int)len, MPI_BYTE, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE) == MPI_SUCCESS
                   ? QJ_OK
                   : qj_fail(QJ_ERR_IO, "MPI: receive from rank 0 failed");
#endif
    return xfer(fd, buf, len, 0, eof);
}

qj_status cli_worker_write(int fd, const void *buf, size_t len) {
#ifdef QJ_HAVE_MPI
    if (fd < 0)
        return MPI_Send(buf, (int)len, MPI_BYTE, 0, 0, MPI_COMM_WORLD) == MPI_SUCCESS
                   ? QJ_OK
                   : qj_fail(QJ_ERR_IO, "MPI: send to rank 0 failed");
#endif
    return xfer(fd, (void *)buf, len, 1, NULL);
}

int cli_mpi_available(void) {
#ifdef QJ_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

qj_status cli_mpi_start(int *argc, char ***argv, size_t stop_bytes, cli_mpi *out, cli_pool **pool) {
    memset(out, 0, sizeof *out);
    *pool = NULL;
#ifdef QJ_HAVE_MPI
    if (MPI_Init(argc, argv) != MPI_SUCCESS) return qj_fail(QJ_ERR_IO, "MPI_Init failed");
    out->active = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &out->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &out->size);
    /* the rank's place among the workers of its host (rank 0, the driver, is not one) */
    MPI_Comm host;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &host);
    int lr = 0, lo = 0;
    MPI_Comm_rank(host, &lr);
    MPI_Allreduce(&out->rank, &lo, 1, MPI_INT, MPI_MIN, host);
    out->host_worker = lo == 0 ? lr - 1 : lr;
    MPI_Comm_free(&host);
    if (out->size < 2) return qj_fail(QJ_ERR_INVALID, "--mpi: %d MPI rank; it needs a driver and at least one worker "
                                      "(mpirun -np 2 or more)", out->size);
    if (out->rank == 0) {
        cli_pool *p = calloc(1, sizeof *p);
        if (!p) return qj_fail(QJ_ERR_NOMEM, "out of memory");
        p->n = out->size - 1;
        p->mpi = 1;
        p->stop = stop_bytes;
        *pool = p;
    }
    return QJ_OK;
#else
    (void)argc;
    (void)argv;
    (void)stop_bytes;
    return qj_fail(QJ_ERR_UNSUPPORTED, "this qjit was built without MPI (Open MPI: libopenmpi-dev)");
#endif
}

void cli_mpi_end(cli_mpi *m, int failed) {
#ifdef QJ_HAVE_MPI
    if (!m->active) return;
    if (failed) MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_Finalize();
    m->active = 0;
#else
    (void)m;
    (void)failed;
#endif
}
