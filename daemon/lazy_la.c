/* daemon/lazy_la.c: plorad's BLAS and LAPACK, loaded on first use.
 *
 * plorad links this file instead of -lopenblas -llapacke (daemon/meson.build;
 * `plora`, the tests and the benches link the real libraries). Only merges
 * (fusion/) and spectral analysis (graph/) do linear algebra, and an idle
 * daemon runs neither; yet loading OpenBLAS at start-up cost ~3 MiB of RSS
 * (its DYNAMIC_ARCH tables are relocated at load, its constructor runs, and
 * LAPACK, libgfortran and libquadmath come along).
 *
 * Each function below has the prototype of <lapacke.h> or <cblas.h>, which
 * are included so that the compiler checks it, and calls the real function,
 * resolved once (pthread_once: merges run in libuv's worker threads). The
 * linker tells when plorad reaches an entry point missing here.
 *
 * Failure: a library or symbol that cannot be loaded is an install error.
 * These functions have no way to report it (the cblas ones return nothing,
 * and a made-up LAPACK info code would be read as a numerical failure), so
 * the process prints the library, the symbol and dlerror() on stderr and
 * aborts, at the first merge or spectral analysis.
 */
#include <cblas.h>
#include <dlfcn.h>
#include <lapacke.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* Debian 12's sonames (packages libopenblas0-pthread, liblapacke). OpenBLAS
 * is loaded first and RTLD_GLOBAL so that LAPACKE's calls into LAPACK and
 * BLAS bind to it, as they did when plorad linked -lopenblas ahead of
 * -llapacke: LAPACKE's own dependencies (liblapack.so.3, libblas.so.3) come
 * later in the lookup order. */
#define LA_LIBS(X) \
    X(OPENBLAS, "libopenblas.so.0", RTLD_NOW | RTLD_GLOBAL) \
    X(LAPACKE,  "liblapacke.so.3",  RTLD_NOW | RTLD_LOCAL)

/* Every entry point plorad reaches, and the library that defines it. */
#define LA_SYMS(X) \
    X(OPENBLAS, openblas_get_num_threads) \
    X(OPENBLAS, openblas_set_num_threads) \
    X(OPENBLAS, cblas_daxpy) \
    X(OPENBLAS, cblas_ddot) \
    X(OPENBLAS, cblas_dgemm) \
    X(OPENBLAS, cblas_dscal) \
    X(OPENBLAS, cblas_dsyrk) \
    X(LAPACKE,  LAPACKE_dgesdd) \
    X(LAPACKE,  LAPACKE_dlamch) \
    X(LAPACKE,  LAPACKE_dpotrf) \
    X(LAPACKE,  LAPACKE_dstebz) \
    X(LAPACKE,  LAPACKE_dstein) \
    X(LAPACKE,  LAPACKE_dsyevd) \
    X(LAPACKE,  LAPACKE_dsyevr) \
    X(LAPACKE,  LAPACKE_dtrtri)

enum la_lib {
#define X(id, soname, flags) LA_LIB_##id,
    LA_LIBS(X)
#undef X
    LA_N_LIBS
};

enum la_sym {
#define X(lib, name) LA_##name,
    LA_SYMS(X)
#undef X
    LA_N_SYMS
};

static const struct { const char *soname; int flags; } la_libs[LA_N_LIBS] = {
#define X(id, soname, flags) { soname, flags },
    LA_LIBS(X)
#undef X
};

static const struct { enum la_lib lib; const char *name; } la_syms[LA_N_SYMS] = {
#define X(lib, name) { LA_LIB_##lib, #name },
    LA_SYMS(X)
#undef X
};

/* Written once under la_once, read-only afterwards. The handles are never
 * closed: the functions stay in use until exit. */
static void *la_fn[LA_N_SYMS];
static pthread_once_t la_once = PTHREAD_ONCE_INIT;

static _Noreturn void la_die(const char *soname, const char *symbol, const char *why)
{
    fprintf(stderr, "plorad: cannot load %s%s%s: %s; merges and spectral analysis need "
            "BLAS and LAPACK (Debian: libopenblas0-pthread, liblapacke); aborting\n",
            symbol != NULL ? symbol : "", symbol != NULL ? " from " : "", soname,
            why != NULL ? why : "unknown error");
    abort();
}

static void la_load(void)
{
    void *h[LA_N_LIBS];

    for (int i = 0; i < LA_N_LIBS; i++) {
        dlerror();   /* clear a stale message */
        if ((h[i] = dlopen(la_libs[i].soname, la_libs[i].flags)) == NULL)
            la_die(la_libs[i].soname, NULL, dlerror());
    }
    for (int s = 0; s < LA_N_SYMS; s++) {
        dlerror();
        /* a function's address is never NULL, so NULL means "not found" */
        if ((la_fn[s] = dlsym(h[la_syms[s].lib], la_syms[s].name)) == NULL)
            la_die(la_libs[la_syms[s].lib].soname, la_syms[s].name, dlerror());
    }
}

static void *la(enum la_sym s)
{
    pthread_once(&la_once, la_load);
    return la_fn[s];
}

/* The real function, as a pointer of the header's own type. */
#define LA_FN(name) ((__typeof__(name) *)la(LA_##name))

int openblas_get_num_threads(void)
{
    return LA_FN(openblas_get_num_threads)();
}

void openblas_set_num_threads(int num_threads)
{
    LA_FN(openblas_set_num_threads)(num_threads);
}

void cblas_daxpy(const blasint n, const double alpha, const double *x, const blasint incx,
                 double *y, const blasint incy)
{
    LA_FN(cblas_daxpy)(n, alpha, x, incx, y, incy);
}

double cblas_ddot(const blasint n, const double *x, const blasint incx, const double *y,
                  const blasint incy)
{
    return LA_FN(cblas_ddot)(n, x, incx, y, incy);
}

void cblas_dgemm(const enum CBLAS_ORDER Order, const enum CBLAS_TRANSPOSE TransA,
                 const enum CBLAS_TRANSPOSE TransB, const blasint M, const blasint N,
                 const blasint K, const double alpha, const double *A, const blasint lda,
                 const double *B, const blasint ldb, const double beta, double *C,
                 const blasint ldc)
{
    LA_FN(cblas_dgemm)(Order, TransA, TransB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void cblas_dscal(const blasint N, const double alpha, double *X, const blasint incX)
{
    LA_FN(cblas_dscal)(N, alpha, X, incX);
}

void cblas_dsyrk(const enum CBLAS_ORDER Order, const enum CBLAS_UPLO Uplo,
                 const enum CBLAS_TRANSPOSE Trans, const blasint N, const blasint K,
                 const double alpha, const double *A, const blasint lda, const double beta,
                 double *C, const blasint ldc)
{
    LA_FN(cblas_dsyrk)(Order, Uplo, Trans, N, K, alpha, A, lda, beta, C, ldc);
}

lapack_int LAPACKE_dgesdd(int matrix_layout, char jobz, lapack_int m, lapack_int n, double *a,
                          lapack_int lda, double *s, double *u, lapack_int ldu, double *vt,
                          lapack_int ldvt)
{
    return LA_FN(LAPACKE_dgesdd)(matrix_layout, jobz, m, n, a, lda, s, u, ldu, vt, ldvt);
}

double LAPACKE_dlamch(char cmach)
{
    return LA_FN(LAPACKE_dlamch)(cmach);
}

lapack_int LAPACKE_dpotrf(int matrix_layout, char uplo, lapack_int n, double *a, lapack_int lda)
{
    return LA_FN(LAPACKE_dpotrf)(matrix_layout, uplo, n, a, lda);
}

lapack_int LAPACKE_dstebz(char range, char order, lapack_int n, double vl, double vu,
                          lapack_int il, lapack_int iu, double abstol, const double *d,
                          const double *e, lapack_int *m, lapack_int *nsplit, double *w,
                          lapack_int *iblock, lapack_int *isplit)
{
    return LA_FN(LAPACKE_dstebz)(range, order, n, vl, vu, il, iu, abstol, d, e, m, nsplit, w,
                                 iblock, isplit);
}

lapack_int LAPACKE_dstein(int matrix_layout, lapack_int n, const double *d, const double *e,
                          lapack_int m, const double *w, const lapack_int *iblock,
                          const lapack_int *isplit, double *z, lapack_int ldz,
                          lapack_int *ifailv)
{
    return LA_FN(LAPACKE_dstein)(matrix_layout, n, d, e, m, w, iblock, isplit, z, ldz, ifailv);
}

lapack_int LAPACKE_dsyevd(int matrix_layout, char jobz, char uplo, lapack_int n, double *a,
                          lapack_int lda, double *w)
{
    return LA_FN(LAPACKE_dsyevd)(matrix_layout, jobz, uplo, n, a, lda, w);
}

lapack_int LAPACKE_dsyevr(int matrix_layout, char jobz, char range, char uplo, lapack_int n,
                          double *a, lapack_int lda, double vl, double vu, lapack_int il,
                          lapack_int iu, double abstol, lapack_int *m, double *w, double *z,
                          lapack_int ldz, lapack_int *isuppz)
{
    return LA_FN(LAPACKE_dsyevr)(matrix_layout, jobz, range, uplo, n, a, lda, vl, vu, il, iu,
                                 abstol, m, w, z, ldz, isuppz);
}

lapack_int LAPACKE_dtrtri(int matrix_layout, char uplo, char diag, lapack_int n, double *a,
                          lapack_int lda)
{
    return LA_FN(LAPACKE_dtrtri)(matrix_layout, uplo, diag, n, a, lda);
}
