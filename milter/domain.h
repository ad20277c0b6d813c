/*
 * domain.h - normalise mail domains and list their lookup candidates
 *
 * Pure: no I/O, no logging, no global state (libidn2 is reentrant).
 *
 * The normal form is what Redis keys use: ASCII lower case, no trailing
 * dot, internationalised labels as A-labels (IDNA 2008 with UTS #46
 * non-transitional mapping), so "Bücher.DE." and "xn--bcher-kva.de" are one
 * key.  Only letters, digits, '-' and '_' are allowed in a label; labels are
 * 1-63 bytes, the whole at most DOMAIN_MAX bytes.
 */
#ifndef DOMAIN_H
#define DOMAIN_H

#include <stddef.h>

#define DOMAIN_MAX 253

/* The most candidates a domain can have (labels of at most 2 bytes). */
#define DOMAIN_MAX_CANDIDATES ((DOMAIN_MAX + 1) / 2)

int domain_normalize(const char *in, char *out, size_t outlen, char *why,
                     size_t whylen);
size_t domain_candidates(const char *norm, int subdomains, const char **out,
                         size_t max);
int domain_equal(const char *norm, const char *other);

#endif
