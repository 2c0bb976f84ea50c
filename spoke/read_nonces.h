/*
 * read_nonces: the nonces of commands that only read agents
 * (AGENT_STATUS, AGENT_LIST), remembered in this process until their
 * command could no longer be accepted anyway, instead of in Valkey: with
 * appendfsync always, a nonce recorded in Valkey costs a read an fsync,
 * several times what the read itself costs. A replayed read is refused
 * like any replay while this spoke runs; a restart forgets them, so a
 * read captured before it could be carried out once more within its
 * window, answering with the state at that moment to the one who sent it
 * (README: What this protects). Commands that change anything keep their
 * nonces in Valkey, through restarts.
 *
 * An open-addressing table keyed by SipHash under a random key, grown
 * as needed up to READ_NONCES_SLOTS_MAX slots, expired entries dropped
 * whenever it is rebuilt. Loop thread only.
 */
#ifndef TSR_READ_NONCES_H
#define TSR_READ_NONCES_H

#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "error.h"

#define READ_NONCES_SLOTS_MIN 1024
#define READ_NONCES_SLOTS_MAX (1 << 18) /* 8 MiB: half of it live at most */

struct read_nonces;

int read_nonces_new(struct read_nonces **out, struct tsr_err *err);
void read_nonces_free(struct read_nonces *rn);
/*
 * Claims a nonce (1..ENVELOPE_NONCE_BYTES bytes) until now_ms + ttl_ms.
 * PERMISSION_DENIED "replayed command" if it is claimed and unexpired;
 * RESOURCE_EXHAUSTED when the table holds as many unexpired nonces as it
 * may (the caller records this one in Valkey instead).
 */
int read_nonces_claim(struct read_nonces *rn, const uint8_t *nonce, size_t len, int64_t now_ms,
		      int64_t ttl_ms, struct tsr_err *err);

#endif
