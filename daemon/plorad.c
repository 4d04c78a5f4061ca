/* daemon/plorad.c: the plorad executable (flags: daemon/config.h and
 * /work/notes/plorad-contract.md). Exit 0 after a graceful stop (SIGTERM,
 * SIGINT), 2 on bad configuration or flags (the message names the file or
 * flag, the field and the problem), 1 on a runtime failure (cannot listen,
 * audit write failed). */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <uv.h>

#include "config.h"
#include "dmn_err.h"
#include "log.h"
#include "node.h"

/* Codes that mean "your input is wrong" (exit 2) rather than "the system
 * failed us" (exit 1). */
static int exit_code_of(int rc)
{
    switch (rc) {
    case DMN_E_CONFIG:
    case DMN_E_CONFIG_FIELD:
    case DMN_E_CONFIG_UNKNOWN:
    case DMN_E_KEY:
    case DMN_E_POLICY:
    case DMN_E_PUBLISH:
    case DMN_E_NAME:
    case DMN_E_ARG:
        return 2;
    default:
        return 1;
    }
}

int main(int argc, char **argv)
{
    struct config cfg;
    struct dmn_diag d = { 0 };
    struct node *n = NULL;
    uv_loop_t loop;
    sigset_t sigs;
    int rc, code;

    /* OpenBLAS reads OPENBLAS_NUM_THREADS in its constructor, which runs
     * when lazy_la.c loads it at the first merge: set here, before any
     * thread exists, it is in time. One BLAS thread keeps the RSS small;
     * the gate and merge already run in libuv's worker threads. An
     * operator's own value is kept. */
    setenv("OPENBLAS_NUM_THREADS", "1", 0);
    /* Before any other OpenSSL call: skip openssl.cnf and the error string
     * tables (0.3 MiB of RSS together). plorad never prints OpenSSL's error
     * queue (crypto/ reports its own codes), never does TLS, and its
     * algorithms are fixed, so neither has anything to give it. */
    if (OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS,
                            NULL) != 1) {
        fprintf(stderr, "plorad: OpenSSL could not initialise\n");
        return 1;
    }
    /* SIGTERM/SIGINT/SIGHUP wait until the node's handlers are installed:
     * a stop asked for during start-up is still a clean stop. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    /* glibc gives each thread that mallocs an arena of its own, and an arena
     * keeps what it freed: with libuv's four workers that held 3-4 MiB per
     * node in a churning swarm (hard_churn: RssAnon 8.3-10.5 MiB, 5.1-6.0
     * with one arena). Two: the loop's and one the workers share (their
     * jobs are few, long and allocate little per call). */
    mallopt(M_ARENA_MAX, 2);
    config_defaults(&cfg);
    rc = config_from_args(&cfg, argc, argv, &d);
    if (rc == 1) {
        config_free(&cfg);
        return 0;   /* --help */
    }
    if (rc != 0 || (rc = config_check(&cfg, &d)) != 0) {
        fprintf(stderr, "plorad: %s\n", d.msg);
        config_free(&cfg);
        return 2;
    }
    log_set_level((enum log_level)cfg.log_level);
    if (uv_loop_init(&loop) != 0) {
        fprintf(stderr, "plorad: event loop could not start\n");
        config_free(&cfg);
        return 1;
    }
    if ((rc = node_new(&n, &loop, &cfg, &d)) != 0) {
        fprintf(stderr, "plorad: %s (%s)\n", d.msg, dmn_err_name(rc));
        code = exit_code_of(rc);
    } else {
        sigprocmask(SIG_UNBLOCK, &sigs, NULL);   /* pending ones are delivered now */
        code = node_run(n);
        if (node_abandoned(n))   /* worker threads still hold the node: no teardown */
            _exit(code);
        node_free(n);
    }
    uv_loop_close(&loop);
    config_free(&cfg);
    return code;
}
