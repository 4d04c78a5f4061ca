/* daemon/cli.c: shared helpers of the `plora` subcommands. */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void vmsg(const char *cmd, const char *fmt, va_list ap)
{
    fprintf(stderr, "plora %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vmsg(cmd, fmt, ap);
    va_end(ap);
    return CLI_USAGE;
}

void cli_err(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vmsg(cmd, fmt, ap);
    va_end(ap);
}

int cli_print_json(json_t *obj)
{
    int rc = 0;

    if (obj == NULL)
        return 0;
    if (json_dumpf(obj, stdout, JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_REAL_PRECISION(17)) != 0 ||
        fputc('\n', stdout) == EOF || fflush(stdout) != 0)
        rc = -1;
    json_decref(obj);
    return rc;
}

bool cli_parse_long(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        cli_usage_error(cmd, "%s: \"%s\" is not an integer in %ld..%ld", opt, s, lo, hi);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_u64(const char *cmd, const char *opt, const char *s, unsigned long long *out)
{
    char *end = NULL;
    unsigned long long v;

    errno = 0;
    if (s[0] == '-' || s[0] == '\0')
        goto bad;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        goto bad;
    *out = v;
    return true;
bad:
    cli_usage_error(cmd, "%s: \"%s\" is not a non-negative integer", opt, s);
    return false;
}

bool cli_parse_double(const char *cmd, const char *opt, const char *s, double *out)
{
    char *end = NULL;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v)) {
        cli_usage_error(cmd, "%s: \"%s\" is not a finite number", opt, s);
        return false;
    }
    *out = v;
    return true;
}

const char *cli_fixtures_dir(void)
{
    static char buf[PATH_MAX];
    const char *env = getenv("PLORA_FIXTURES");
    struct stat st;
    ssize_t n;
    char *slash;

    if (env != NULL && env[0] != '\0')
        return env;
    /* The binary lives in <project>/<builddir>/daemon/plora; fixtures sit in
     * <project>/../shared/fixtures. */
    n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (n > 0) {
        buf[n] = '\0';
        for (int up = 0; up < 3 && (slash = strrchr(buf, '/')) != NULL; up++)
            *slash = '\0';
        if (strlen(buf) + sizeof("/../shared/fixtures") < sizeof(buf)) {
            strcat(buf, "/../shared/fixtures");
            if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
                return buf;
        }
    }
    return "../shared/fixtures";
}
