/* daemon/hashbehind.c: a thread hashing a file as it grows (see the header).
 *
 * The thread waits on a condition variable until the writer has advanced
 * past what it hashed, then reads at most HB_STEP bytes (fdio_pread_full) and feeds
 * them to SHA-256, releasing the mutex while it reads and hashes. HB_STEP
 * is small enough that the buffer stays in L2 between the read and the hash
 * (128 KiB: its copy out of the page cache costs a few % of the hash), and
 * bounds how long a cancel waits.
 */
#include "hashbehind.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "fdio.h"

#define HB_STEP (128u << 10)   /* bytes read and hashed per step */

struct hashbehind {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int fd;
    uint64_t avail;        /* [0, avail) may be read (mu) */
    bool closed;           /* no advance will follow (mu) */
    bool stop;             /* cancel: leave at the next step (mu) */
    uint64_t done;         /* bytes hashed (the thread's until joined) */
    bool ok;               /* digest in md covers [0, done) (after join) */
    struct sha256_ctx *h;
    uint8_t md[SHA256_LEN];
};

static atomic_uint running;   /* started and not yet freed */

/* Wait until there is something to hash or nothing more will come;
 * returns the number of bytes to hash next (0: leave). */
static size_t next_step(struct hashbehind *hb)
{
    uint64_t left;

    pthread_mutex_lock(&hb->mu);
    while (!hb->stop && !hb->closed && hb->avail == hb->done)
        pthread_cond_wait(&hb->cv, &hb->mu);
    left = hb->stop ? 0 : hb->avail - hb->done;
    pthread_mutex_unlock(&hb->mu);
    return left < HB_STEP ? (size_t)left : HB_STEP;
}

static void *hb_main(void *arg)
{
    struct hashbehind *hb = arg;
    uint8_t *buf = malloc(HB_STEP);
    size_t n;
    bool failed = buf == NULL;

    while (!failed && (n = next_step(hb)) > 0) {
        if (fdio_pread_full(hb->fd, buf, n, hb->done) != 0 || sha256_update(hb->h, buf, n) != 0)
            failed = true;
        else
            hb->done += n;
    }
    free(buf);
    pthread_mutex_lock(&hb->mu);
    failed = failed || hb->stop || hb->done != hb->avail;
    pthread_mutex_unlock(&hb->mu);
    hb->ok = !failed && sha256_final(hb->h, hb->md) == 0;
    return NULL;
}

static void hb_free(struct hashbehind *hb)
{
    close(hb->fd);
    sha256_free(hb->h);
    pthread_cond_destroy(&hb->cv);
    pthread_mutex_destroy(&hb->mu);
    free(hb);
    atomic_fetch_sub(&running, 1);
}

struct hashbehind *hashbehind_start(const char *path)
{
    struct hashbehind *hb = NULL;

    if (atomic_fetch_add(&running, 1) >= HASHBEHIND_MAX)
        goto refuse;
    if ((hb = calloc(1, sizeof(*hb))) == NULL)
        goto refuse;
    if ((hb->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        goto refuse;
    if (sha256_new(&hb->h) != 0)
        goto refuse_fd;
    if (pthread_mutex_init(&hb->mu, NULL) != 0)
        goto refuse_h;
    if (pthread_cond_init(&hb->cv, NULL) != 0)
        goto refuse_mu;
    if (pthread_create(&hb->th, NULL, hb_main, hb) != 0)
        goto refuse_cv;
    return hb;
refuse_cv:
    pthread_cond_destroy(&hb->cv);
refuse_mu:
    pthread_mutex_destroy(&hb->mu);
refuse_h:
    sha256_free(hb->h);
refuse_fd:
    close(hb->fd);
refuse:
    free(hb);
    atomic_fetch_sub(&running, 1);
    return NULL;
}

void hashbehind_advance(struct hashbehind *hb, uint64_t n)
{
    pthread_mutex_lock(&hb->mu);
    if (n > hb->avail) {
        hb->avail = n;
        pthread_cond_signal(&hb->cv);
    }
    pthread_mutex_unlock(&hb->mu);
}

void hashbehind_close(struct hashbehind *hb)
{
    pthread_mutex_lock(&hb->mu);
    hb->closed = true;
    pthread_cond_signal(&hb->cv);
    pthread_mutex_unlock(&hb->mu);
}

int hashbehind_finish(struct hashbehind *hb, uint64_t n, uint8_t md[SHA256_LEN])
{
    int rc;

    hashbehind_close(hb);
    pthread_join(hb->th, NULL);
    rc = hb->ok && hb->done == n ? 0 : -1;
    if (rc == 0)
        for (size_t i = 0; i < SHA256_LEN; i++)
            md[i] = hb->md[i];
    hb_free(hb);
    return rc;
}

void hashbehind_cancel(struct hashbehind *hb)
{
    if (hb == NULL)
        return;
    pthread_mutex_lock(&hb->mu);
    hb->stop = true;
    pthread_cond_signal(&hb->cv);
    pthread_mutex_unlock(&hb->mu);
    pthread_join(hb->th, NULL);
    hb_free(hb);
}
