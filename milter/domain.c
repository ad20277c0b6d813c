/*
 * domain.c - domain normalisation and subdomain candidates; see domain.h
 */
#include <idn2.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"
#include "mxs.h"

/* check_ascii - lower-case an ASCII domain in place and validate it */
static int
check_ascii(char *d, char *why, size_t whylen)
{
    size_t label = 0;
    size_t i, len = strlen(d);

    if (len == 0) {
        mxs_why(why, whylen, "empty domain");
        return MXS_INVALID;
    }
    if (len > DOMAIN_MAX) {
        mxs_why(why, whylen, "domain longer than %d bytes", DOMAIN_MAX);
        return MXS_INVALID;
    }
    for (i = 0; i <= len; i++) {
        unsigned char ch = (unsigned char)d[i];

        if (ch == '.' || ch == '\0') {
            if (label == 0) {
                mxs_why(why, whylen, "empty label in domain");
                return MXS_INVALID;
            }
            if (label > 63) {
                mxs_why(why, whylen, "label longer than 63 bytes");
                return MXS_INVALID;
            }
            label = 0;
            continue;
        }
        if (ch >= 'A' && ch <= 'Z')
            d[i] = (char)(ch - 'A' + 'a');
        else if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                   ch == '-' || ch == '_')) {
            mxs_why(why, whylen, "byte 0x%02x not allowed in a domain", ch);
            return MXS_INVALID;
        }
        label++;
    }
    return MXS_OK;
}

/*
 * domain_normalize - put a domain into the form Redis keys use
 *
 * out must hold DOMAIN_MAX + 1 bytes.  Returns MXS_OK, or MXS_INVALID with
 * the reason in why.  Address literals are not domains: callers skip them.
 */
int
domain_normalize(const char *in, char *out, size_t outlen, char *why,
                 size_t whylen)
{
    size_t len = strlen(in);
    const unsigned char *p;
    char *ascii = NULL;
    char tmp[4 * DOMAIN_MAX + 8];
    int rc;

    if (len > 0 && in[len - 1] == '.')
        len--;
    if (len == 0) {
        mxs_why(why, whylen, "empty domain");
        return MXS_INVALID;
    }
    if (len >= sizeof(tmp) || outlen < DOMAIN_MAX + 1) {
        mxs_why(why, whylen, "domain longer than %d bytes", DOMAIN_MAX);
        return MXS_INVALID;
    }
    memcpy(tmp, in, len);
    tmp[len] = '\0';
    for (p = (const unsigned char *)tmp; *p && *p < 0x80; p++)
        ;
    if (*p != '\0') {
        rc = idn2_to_ascii_8z(tmp, &ascii,
                              IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
        if (rc != IDN2_OK) {
            mxs_why(why, whylen, "not a valid internationalised domain: %s",
                    idn2_strerror(rc));
            return MXS_INVALID;
        }
        if (strlen(ascii) >= sizeof(tmp)) {
            idn2_free(ascii);
            mxs_why(why, whylen, "domain longer than %d bytes", DOMAIN_MAX);
            return MXS_INVALID;
        }
        strcpy(tmp, ascii);
        idn2_free(ascii);
    }
    rc = check_ascii(tmp, why, whylen);
    if (rc != MXS_OK)
        return rc;
    memcpy(out, tmp, strlen(tmp) + 1);
    return MXS_OK;
}

/*
 * domain_candidates - keys to try for a domain, most specific first
 *
 * With subdomains, a.b.example.com gives a.b.example.com, b.example.com and
 * example.com: parents down to two labels (a bare top-level domain is never
 * a candidate).  The pointers point into norm.  Returns the count.
 */
size_t
domain_candidates(const char *norm, int subdomains, const char **out,
                  size_t max)
{
    const char *p = norm;
    size_t n = 0;

    if (max == 0)
        return 0;
    out[n++] = norm;
    if (!subdomains)
        return n;
    while ((p = strchr(p, '.')) != NULL) {
        p++;
        if (strchr(p, '.') == NULL || n == max)
            break;
        out[n++] = p;
    }
    return n;
}

/*
 * domain_equal - whether a host name the MTA gave names this domain
 *
 * other may carry a trailing dot, upper case or U-labels; a bracketed host
 * or one with a port never equals a domain.
 */
int
domain_equal(const char *norm, const char *other)
{
    char buf[DOMAIN_MAX + 1];

    if (other == NULL || other[0] == '[' || strchr(other, ':') != NULL)
        return 0;
    if (domain_normalize(other, buf, sizeof(buf), NULL, 0) != MXS_OK)
        return 0;
    return strcmp(norm, buf) == 0;
}
