/* tests/unit/test_kld.c: exact Cauchy KL and the fused-model KL bound. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kld.h"

static void check_close(const char *what, double got, double want, double rel)
{
    if (!(fabs(got - want) <= rel * fmax(fabs(want), 1e-300)))
        fail_msg("%s: got %.17g, want %.17g (rel tol %g)", what, got, want, rel);
}

/* THEORY.md: base (0, 1) vs a shift of mu by 1: log(5/4); by 2: log 2; the
 * naive sum of the two single shifts, log(25/16), is below the fused value. */
static void test_textbook(void **state)
{
    double mu0 = 0.0, lg0 = 0.0, mu1 = 1.0, mu2 = 2.0, kl1, kl2;
    struct fusion_diag d;

    (void)state;
    assert_int_equal(kld_cauchy_diag(&mu0, &lg0, &mu1, &lg0, 1, &kl1, &d), 0);
    assert_int_equal(kld_cauchy_diag(&mu0, &lg0, &mu2, &lg0, 1, &kl2, &d), 0);
    check_close("KL(P0||P1)", kl1, log(5.0 / 4.0), 1e-15);
    check_close("KL(P0||Pfused)", kl2, log(2.0), 1e-15);
    check_close("sum of the two", 2.0 * kl1, log(25.0 / 16.0), 1e-15);
    if (!(kl2 > 2.0 * kl1 + 0.2))
        fail_msg("fused KL %.6f should exceed the additive bound %.6f", kl2, 2.0 * kl1);
}

static void test_table(void **state)
{
    static const struct {
        const char *name;
        double mua, lga, mub, lgb, want;
    } cases[] = {
        { "identical", 0.3, -1.2, 0.3, -1.2, 0.0 },
        /* scales 1 and 2, same location: log(9/8) */
        { "scale x2", 0.0, 0.0, 0.0, 0x1.62e42fefa39efp-1, 0.11778303565638346 },
        /* ((1+2)^2 + 2^2) / (4*1*2) = 13/8 */
        { "both", 1.0, 0.0, -1.0, 0x1.62e42fefa39efp-1, 0.48550781578170077 },
        /* tiny shift: KL ~ dmu^2/4 for gamma 1, digits kept by log1p */
        { "tiny shift", 0.0, 0.0, 2e-9, 0.0, 1e-18 },
        /* huge scales: ratio form avoids overflow; equal to the (1,2) case */
        { "huge scales", 0.0, 650.0, 0.0, 650.0 + 0x1.62e42fefa39efp-1, 0.11778303565638346 },
    };
    struct fusion_diag d;
    double got, back;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(kld_cauchy_diag(&cases[i].mua, &cases[i].lga, &cases[i].mub, &cases[i].lgb,
                                         1, &got, &d), 0);
        assert_int_equal(kld_cauchy_diag(&cases[i].mub, &cases[i].lgb, &cases[i].mua, &cases[i].lga,
                                         1, &back, &d), 0);
        if (cases[i].want == 0.0 ? got != 0.0 : fabs(got - cases[i].want) > 1e-12 * cases[i].want)
            fail_msg("%s: got %.17g want %.17g", cases[i].name, got, cases[i].want);
        check_close(cases[i].name, back, got, 1e-15);
    }
}

/* Independent dimensions add; a NaN anywhere is refused and named. */
static void test_dims_and_errors(void **state)
{
    double mua[3] = { 0, 0, 5 }, lga[3] = { 0, 0, 1 }, mub[3] = { 1, 2, 5 }, lgb[3] = { 0, 0, 1 };
    double out;
    struct fusion_diag d;

    (void)state;
    assert_int_equal(kld_cauchy_diag(mua, lga, mub, lgb, 3, &out, &d), 0);
    check_close("3 dims", out, log(5.0 / 4.0) + log(2.0), 1e-15);
    assert_int_equal(kld_cauchy_diag(mua, lga, mub, lgb, 0, &out, &d), 0);
    assert_true(out == 0.0);
    lgb[2] = NAN;
    assert_int_equal(kld_cauchy_diag(mua, lga, mub, lgb, 3, &out, &d), FUSION_E_KLD_ARG);
    assert_non_null(strstr(d.msg, "dimension 2"));
    lgb[2] = INFINITY;
    assert_int_equal(kld_cauchy_diag(mua, lga, mub, lgb, 3, &out, &d), FUSION_E_KLD_ARG);
    assert_int_equal(kld_cauchy_diag(NULL, lga, mub, lgb, 3, &out, &d), FUSION_E_ARG);
}

static void test_bound_and_budget(void **state)
{
    double w[3] = { 0.5, -0.3, 0.2 }, eps[3] = { 0.04, 0.01, 0.09 };
    /* sum |w| sqrt(eps) = .1 + .03 + .06 = .19 */
    struct kld_bound b;
    struct fusion_diag d;
    double f;

    (void)state;
    assert_int_equal(kld_bound_compute(w, eps, 3, &b, &d), 0);
    check_close("local", b.local, 0.19 * 0.19, 1e-14);
    check_close("cs", b.cs, 3.0 * (0.25 * 0.04 + 0.09 * 0.01 + 0.04 * 0.09), 1e-14);
    if (!(b.cs >= b.local))
        fail_msg("Cauchy-Schwarz bound %g below the local one %g", b.cs, b.local);
    assert_int_equal(kld_budget_scale(w, eps, 3, 1.0, &f, &d), 0);
    assert_true(f == 1.0);
    assert_int_equal(kld_budget_scale(w, eps, 3, 0.01, &f, &d), 0);
    check_close("scale", f, 0.1 / 0.19, 1e-14);
    for (int k = 0; k < 3; k++)
        w[k] *= f;
    assert_int_equal(kld_bound_compute(w, eps, 3, &b, &d), 0);
    check_close("scaled bound == budget", b.local, 0.01, 1e-13);
    assert_int_equal(kld_budget_scale(w, eps, 3, 0.0, &f, &d), FUSION_E_KLD_ARG);
    assert_int_equal(kld_budget_scale(w, eps, 3, NAN, &f, &d), FUSION_E_KLD_ARG);
    eps[1] = -0.1;
    assert_int_equal(kld_bound_compute(w, eps, 3, &b, &d), FUSION_E_KLD_ARG);
    assert_non_null(strstr(d.msg, "input 1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_textbook),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_dims_and_errors),
        cmocka_unit_test(test_bound_and_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
