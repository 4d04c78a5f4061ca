/* daemon/probe.c: run the gate's external probe (see probe.h). */
#define _GNU_SOURCE  /* posix_spawn_file_actions_addclosefrom_np (glibc >= 2.34) */
#include "probe.h"

#include <errno.h>
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

/* Probes running now (gates run on several worker threads), so that a
 * daemon that exits without waiting for its jobs can take them along. */
#define PROBES_MAX 64
static pthread_mutex_t probes_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t probes[PROBES_MAX];

static void probe_track(pid_t pid, bool add)
{
    pthread_mutex_lock(&probes_lock);
    for (size_t i = 0; i < PROBES_MAX; i++)
        if (probes[i] == (add ? 0 : pid)) {
            probes[i] = add ? pid : 0;
            break;
        }
    pthread_mutex_unlock(&probes_lock);
}

size_t probe_kill_all(void)
{
    size_t n = 0;

    pthread_mutex_lock(&probes_lock);
    for (size_t i = 0; i < PROBES_MAX; i++)
        if (probes[i] > 0) {
            kill(-probes[i], SIGKILL);
            kill(probes[i], SIGKILL);
            n++;
        }
    pthread_mutex_unlock(&probes_lock);
    return n;
}

/* argv for the child: "{adapter}" replaced by dir, else dir appended; the
 * strings are borrowed (NULL-terminated array, the caller frees it). */
static char **probe_argv(const struct policy_probe *p, const char *dir)
{
    char **v = calloc(p->argc + 2, sizeof(char *));
    bool substituted = false;

    if (v == NULL)
        return NULL;
    for (size_t i = 0; i < p->argc; i++) {
        bool is_dir = strcmp(p->argv[i], "{adapter}") == 0;
        substituted |= is_dir;
        v[i] = is_dir ? (char *)dir : p->argv[i];
    }
    if (!substituted)
        v[p->argc] = (char *)dir;
    return v;
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Wait for pid up to timeout_ms of monotonic time; past it kill its process
 * group and reap it. Fills exit_code or timed_out. */
static void wait_child(pid_t pid, unsigned timeout_ms, struct gate_probe_result *out)
{
    struct timespec tick = { 0, (long)PROBE_POLL_MS * 1000000L };
    uint64_t deadline = now_ms() + timeout_ms;
    int st = 0;
    pid_t r;

    for (;;) {
        r = waitpid(pid, &st, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR))
            break;
        if (now_ms() >= deadline) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
            out->timed_out = true;
            return;
        }
        nanosleep(&tick, NULL);
    }
    if (r < 0) {  /* someone else reaped it: we cannot know its verdict */
        out->ran = false;
        snprintf(out->error, sizeof(out->error), "waitpid: %s", strerror(errno));
        return;
    }
    out->exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Spawn attributes: own process group, empty signal mask, default
 * dispositions for the signals a daemon commonly ignores or handles. */
static int spawn_setup(posix_spawnattr_t *at, posix_spawn_file_actions_t *fa)
{
    sigset_t none, defaults;
    int rc;

    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGCHLD);
    sigaddset(&defaults, SIGHUP);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    if ((rc = posix_spawnattr_setflags(at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                       POSIX_SPAWN_SETSIGDEF)) != 0 ||
        (rc = posix_spawnattr_setpgroup(at, 0)) != 0 ||
        (rc = posix_spawnattr_setsigmask(at, &none)) != 0 ||
        (rc = posix_spawnattr_setsigdefault(at, &defaults)) != 0)
        return rc;
    if ((rc = posix_spawn_file_actions_adddup2(fa, STDERR_FILENO, STDOUT_FILENO)) != 0)
        return rc;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    /* the probe inherits no socket or store file a daemon forgot to mark CLOEXEC */
    rc = posix_spawn_file_actions_addclosefrom_np(fa, STDERR_FILENO + 1);
#endif
    return rc;
}

int probe_run(void *ctx, const struct policy_probe *p, const char *dir,
              struct gate_probe_result *out)
{
    char **argv = probe_argv(p, dir);
    posix_spawnattr_t at;
    posix_spawn_file_actions_t fa;
    bool have_at = false, have_fa = false;
    pid_t pid;
    int rc = ENOMEM;

    (void)ctx;
    memset(out, 0, sizeof(*out));
    if (argv != NULL && (rc = posix_spawnattr_init(&at)) == 0)
        have_at = true;
    if (have_at && (rc = posix_spawn_file_actions_init(&fa)) == 0)
        have_fa = true;
    if (have_fa && (rc = spawn_setup(&at, &fa)) == 0)
        rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
    if (rc != 0) {
        snprintf(out->error, sizeof(out->error), "%s: %s", p->argc > 0 ? p->argv[0] : "(none)",
                 strerror(rc));
    } else {
        out->ran = true;
        probe_track(pid, true);
        wait_child(pid, p->timeout_ms, out);
        probe_track(pid, false);
    }
    if (have_fa)
        posix_spawn_file_actions_destroy(&fa);
    if (have_at)
        posix_spawnattr_destroy(&at);
    free(argv);
    return 0;
}
