/*
 * utf8: text bound for protobuf string fields, which must hold well-formed
 * UTF-8 (RFC 3629: shortest forms only, no surrogates, nothing above
 * U+10FFFF), and text from the network bound for logs and terminals.
 * Checks it, repairs it (each ill-formed stretch becomes U+FFFD, within a
 * byte bound) and escapes it (control and ill-formed bytes as \xNN).
 *
 * An ill-formed stretch is a maximal subpart as Unicode defines it (the
 * longest start of a sequence that could still have become a character,
 * else one byte), which is how Python and the WHATWG Encoding standard
 * count replacements too.
 */
#ifndef TSR_UTF8_H
#define TSR_UTF8_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define UTF8_REPLACEMENT "\xef\xbf\xbd" /* U+FFFD, what a repair puts in */

/*
 * Whether s[0..len) is well-formed UTF-8; if not, *bad (unless NULL) gets
 * the offset of the first byte that is not.
 */
bool utf8_valid(const char *s, size_t len, size_t *bad);

/*
 * The length of what starts s[0..len) (len >= 1): one well-formed
 * character (*ok true) or one ill-formed stretch (*ok false), as the
 * functions here count them: for writers of other escapes (log.c's JSON).
 */
size_t utf8_next(const char *s, size_t len, bool *ok);

/* Which end of a repaired text its byte bound keeps. */
enum utf8_keep {
	UTF8_KEEP_HEAD, /* a message, a task: its start */
	UTF8_KEEP_TAIL, /* an output tail: its newest bytes */
};

/*
 * *out gets a malloc'd, NUL-ended copy of s[0..len) with every ill-formed
 * stretch replaced by U+FFFD, and *outlen its length, at most max. A
 * replacement takes 3 bytes where the stretch may have taken 1, so a
 * repair can triple a text: beyond max, whole characters go from its end
 * (UTF8_KEEP_HEAD) or its start (UTF8_KEEP_TAIL). RESOURCE_EXHAUSTED
 * only when out of memory.
 */
int utf8_repair(const char *s, size_t len, size_t max, enum utf8_keep keep, char **out,
		size_t *outlen, struct tsr_err *err);

/*
 * Writes s[0..len) into buf (size >= 1 bytes), NUL-ended and safe to
 * print: each control byte (C0, DEL, and the C1 characters U+0080-U+009F)
 * and each byte of an ill-formed stretch as "\xNN"; the other characters
 * as they are. What does not fit is left off at a character or an escape,
 * never inside one. A text already escaped comes out unchanged.
 */
void utf8_escape(const char *s, size_t len, char *buf, size_t size);

#endif
