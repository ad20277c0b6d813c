/*
 * addr.c - envelope address parsing and tagging; see addr.h
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "mxs.h"

/*
 * ends_with_tag - whether s[0..len) ends in delim+tag with text before it
 *
 * A delimiter escaped by a backslash ("a\\+mx-remote") is text, not a
 * delimiter: cutting there would leave a dangling backslash.
 */
static int
ends_with_tag(const char *s, size_t len, char delim, const char *tag)
{
    size_t tlen = strlen(tag), at, bs = 0;

    if (tlen == 0 || len < tlen + 2)
        return 0;
    at = len - tlen - 1;
    while (bs < at && s[at - bs - 1] == '\\')
        bs++;
    return s[at] == delim && bs % 2 == 0 &&
           strncasecmp(s + len - tlen, tag, tlen) == 0;
}

/*
 * strip_tag - cut every mxswitch tag off the end of the local part text
 *
 * Returns the last tag (the one the MTA routes by).  Tags repeated by a
 * client ("bob+mx-remote+mx-local") all go, so the plain form is tag-free.
 */
static enum addr_tag
strip_tag(char *text, size_t *len, const struct addr_tags *tags)
{
    static const enum addr_tag kinds[] = {ADDR_TAG_REMOTE, ADDR_TAG_LOCAL};
    enum addr_tag found = ADDR_TAG_NONE;
    const char *names[2];
    size_t i = 0;

    names[0] = tags->remote;
    names[1] = tags->local;
    while (i < 2) {
        if (ends_with_tag(text, *len, tags->delimiter, names[i])) {
            *len -= strlen(names[i]) + 1;
            if (found == ADDR_TAG_NONE)
                found = kinds[i];
            i = 0;
            continue;
        }
        i++;
    }
    return found;
}

/* scan_local - find the end of the local part; -1 on bad quoting or a
 * dangling backslash */
static long
scan_local(const char *s, size_t len, int *quoted)
{
    size_t i = 0;

    *quoted = (len > 0 && s[0] == '"');
    if (*quoted) {
        for (i = 1; i < len; i++) {
            if (s[i] == '\\' && i + 1 < len)
                i++;
            else if (s[i] == '"')
                return (long)i + 1;
        }
        return -1;
    }
    for (i = 0; i < len; i++) {
        if (s[i] == '\\' && i + 1 == len)
            return -1; /* escapes nothing: a tag after it would be text */
        if (s[i] == '\\')
            i++;
        else if (s[i] == '@' || s[i] == '"')
            break;
    }
    return (long)i;
}

/* longest_form - bytes of the longest form addr_format() can make of a */
static size_t
longest_form(const struct addr *a, const struct addr_tags *tags)
{
    size_t r = strlen(tags->remote), l = strlen(tags->local);

    /* '<', delimiter, tag, '@', '>' */
    return strlen(a->local) + (r > l ? r : l) + 4 +
           (a->domain ? strlen(a->domain) : 0);
}

/*
 * addr_parse - split an RCPT argument into local part and domain
 *
 * Returns MXS_OK, or MXS_INVALID with the reason in why (control bytes,
 * unbalanced brackets or quotes, an empty domain or local part, including
 * an empty quoted one, a second '@').
 */
int
addr_parse(const char *arg, const struct addr_tags *tags, struct addr *a,
           char *why, size_t whylen)
{
    size_t len = strlen(arg);
    const char *s = arg;
    size_t i, llen, dlen;
    long end;
    char *p;

    memset(a, 0, sizeof(*a));
    if (len > ADDR_MAX) {
        mxs_why(why, whylen, "address longer than %d bytes", ADDR_MAX);
        return MXS_INVALID;
    }
    for (i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            mxs_why(why, whylen, "control byte 0x%02x in address",
                    (unsigned char)s[i]);
            return MXS_INVALID;
        }
    }
    if (len > 0 && s[0] == '<') {
        if (s[len - 1] != '>') {
            mxs_why(why, whylen, "missing '>'");
            return MXS_INVALID;
        }
        s++;
        len -= 2;
    } else if (len > 0 && s[len - 1] == '>') {
        mxs_why(why, whylen, "missing '<'");
        return MXS_INVALID;
    }
    /* A source route (@a,@b:) is ignored, as RFC 5321 4.1.1.3 allows. */
    if (len > 0 && s[0] == '@') {
        const char *colon = memchr(s, ':', len);

        if (colon == NULL) {
            mxs_why(why, whylen, "source route without ':'");
            return MXS_INVALID;
        }
        len -= (size_t)(colon + 1 - s);
        s = colon + 1;
    }
    end = scan_local(s, len, &a->quoted);
    if (end < 0) {
        mxs_why(why, whylen,
                "unbalanced quotes or dangling backslash in local part");
        return MXS_INVALID;
    }
    llen = (size_t)end;
    if (llen < len && s[llen] != '@') {
        mxs_why(why, whylen, "unexpected text after the local part");
        return MXS_INVALID;
    }
    dlen = llen < len ? len - llen - 1 : 0;
    if (llen < len && dlen == 0) {
        mxs_why(why, whylen, "empty domain");
        return MXS_INVALID;
    }
    if (dlen > 0 && memchr(s + llen + 1, '@', dlen) != NULL) {
        mxs_why(why, whylen, "more than one '@'");
        return MXS_INVALID;
    }
    /* "" would be tagged as "+tag", which reads back as a plain local
     * part: the tag could never be recognised again. */
    if ((llen == 0 && dlen > 0) || (a->quoted && llen == 2)) {
        mxs_why(why, whylen, "empty local part");
        return MXS_INVALID;
    }

    a->buf = p = xmalloc(llen + dlen + 2);
    memcpy(p, s, llen);
    p[llen] = '\0';
    a->local = p;
    if (a->quoted) {
        size_t inner = llen - 2;

        a->tag = strip_tag(p + 1, &inner, tags);
        p[inner + 1] = '"';
        p[inner + 2] = '\0';
    } else {
        size_t kept = llen; /* llen still marks where the domain starts */

        a->tag = strip_tag(p, &kept, tags);
        p[kept] = '\0';
    }
    if (llen < len) {
        char *d = p + strlen(p) + 1;

        memcpy(d, s + (size_t)end + 1, dlen);
        d[dlen] = '\0';
        a->domain = d;
        a->literal = (d[0] == '[');
        if (a->literal && d[dlen - 1] != ']') {
            addr_clear(a);
            mxs_why(why, whylen, "unterminated address literal");
            return MXS_INVALID;
        }
    }
    /* Every rewritten form must be taken again when it comes back. */
    if (longest_form(a, tags) > ADDR_MAX + (a->domain ? 0 : 1)) {
        addr_clear(a);
        mxs_why(why, whylen, "address with a tag longer than %d bytes",
                ADDR_MAX);
        return MXS_INVALID;
    }
    return MXS_OK;
}

/* addr_clear - release what addr_parse() allocated */
void
addr_clear(struct addr *a)
{
    if (a == NULL)
        return;
    free(a->buf);
    memset(a, 0, sizeof(*a));
}

/*
 * addr_format_text - append the address in angle brackets, with the given
 * tag, to t
 *
 * ADDR_TAG_NONE gives the plain address.  A quoted local part gets the tag
 * inside the quotes.  An address addr_parse() took needs at most
 * ADDR_MAX + 1 bytes (and the NUL); t->cut says if it did not fit.
 */
void
addr_format_text(const struct addr *a, const struct addr_tags *tags,
                 enum addr_tag tag, struct mxs_text *t)
{
    const char *name = tag == ADDR_TAG_REMOTE  ? tags->remote
                       : tag == ADDR_TAG_LOCAL ? tags->local
                                               : NULL;
    size_t llen = strlen(a->local);

    mxs_text_putc(t, '<');
    if (name != NULL) {
        /* a quoted local part's tag goes before its closing '"' */
        mxs_text_putn(t, a->local, a->quoted ? llen - 1 : llen);
        mxs_text_putc(t, tags->delimiter);
        mxs_text_put(t, name);
        if (a->quoted)
            mxs_text_putc(t, '"');
    } else {
        mxs_text_putn(t, a->local, llen);
    }
    if (a->domain != NULL) {
        mxs_text_putc(t, '@');
        mxs_text_put(t, a->domain);
    }
    mxs_text_putc(t, '>');
}

/* addr_format - addr_format_text() in a buffer the caller frees */
char *
addr_format(const struct addr *a, const struct addr_tags *tags,
            enum addr_tag tag)
{
    size_t len = strlen(a->local) + (a->domain ? strlen(a->domain) : 0) +
                 strlen(tags->remote) + strlen(tags->local) + 8;
    struct mxs_text t;

    mxs_text_init(&t, xmalloc(len), len);
    addr_format_text(a, tags, tag, &t);
    return t.buf;
}

/*
 * addr_plain - the address as an MTA writes it in a table lookup: no
 * angle brackets, no mxswitch tag; the caller frees
 */
char *
addr_plain(const struct addr *a, const struct addr_tags *tags)
{
    char *s = addr_format(a, tags, ADDR_TAG_NONE);
    size_t len = strlen(s);

    memmove(s, s + 1, len - 2);
    s[len - 2] = '\0';
    return s;
}

/* addr_tag_name - "remote", "local" or "none" */
const char *
addr_tag_name(enum addr_tag tag)
{
    switch (tag) {
    case ADDR_TAG_REMOTE:
        return "remote";
    case ADDR_TAG_LOCAL:
        return "local";
    default:
        return "none";
    }
}

/* key_byte - whether a byte may appear in an address key's local part */
static int
key_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c >= 0x80 ||
           strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL;
}

/*
 * addr_key_local - the local part as a per-address key names it
 *
 * local is addr_parse()'s local part (mxswitch tag already removed),
 * quoted whether it is a quoted string.  The quotes and backslash escapes
 * are removed, so "ceo"@d and ceo@d share a key; then the +detail goes:
 * everything from the first delimiter on, unless the delimiter is the
 * first byte; then ASCII letters are folded to lower case (other bytes,
 * UTF-8 included, are kept as they are).  out gets at least
 * ADDR_KEY_LOCAL_MAX + 1 bytes.  Returns MXS_OK, or MXS_NOMATCH when the
 * address can have no key: empty, a byte outside atext, '.' and UTF-8
 * (a space or '@' in a quoted local part, a backslash), or longer than
 * ADDR_KEY_LOCAL_MAX bytes; why says which.
 */
int
addr_key_local(const char *local, int quoted, char delimiter, char *out,
               size_t outlen, char *why, size_t whylen)
{
    size_t len = strlen(local), i, o = 0;

    if (quoted) {
        local++;
        len -= 2;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)local[i];

        if (quoted && c == '\\' && i + 1 < len)
            c = (unsigned char)local[++i];
        if (!key_byte(c)) {
            mxs_why(why, whylen, "local part has byte 0x%02x", c);
            return MXS_NOMATCH;
        }
        if (c == (unsigned char)delimiter && o > 0)
            break;
        if (o >= ADDR_KEY_LOCAL_MAX || o + 1 >= outlen) {
            mxs_why(why, whylen, "local part longer than %d bytes",
                    ADDR_KEY_LOCAL_MAX);
            return MXS_NOMATCH;
        }
        out[o++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    if (o == 0) {
        mxs_why(why, whylen, "empty local part");
        return MXS_NOMATCH;
    }
    out[o] = '\0';
    return MXS_OK;
}
