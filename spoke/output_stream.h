/*
 * output_stream: tessera.v1.Spoke/StreamOutput. An OUTPUT_STREAM command
 * asks for one agent's output from a byte offset, from the first byte the
 * spoke still holds, or from its last lines; its thread (stream_threads.h)
 * sends the output as signed OutputMessages at their offsets, polling the
 * agent's output file, and with follow goes on until the agent's record
 * is terminal, then sends what is left and a last message (end) with the
 * record. A hub that reads slowly makes the thread wait; meanwhile the
 * supervisor frees all but the output tail, and the next chunk says how
 * many bytes were skipped. An agent whose file is gone (it ended, and its
 * record holds the final tail) gets that tail, at offset 0, and the end.
 */
#ifndef TSR_SPOKE_OUTPUT_STREAM_H
#define TSR_SPOKE_OUTPUT_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "rpc_server.h"

/* An rpc_handler_fn; ctx is the spoke's struct stream_threads. */
void output_stream_handle(void *ctx, struct rpc_call *call, const uint8_t *req, size_t len);

#endif
