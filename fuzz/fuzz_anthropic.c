/*
 * fuzz_anthropic.c - reading Anthropic Messages answers
 * (mg_anthropic_read_answer, provider/anthropic.c): the JSON message, and
 * the stream of message_start / content_block_* / message_delta events
 * with text, thinking and signature deltas and tool input arriving as
 * partial JSON.
 *
 * Input: byte 0 odd for a stream (and the seed of its cuts), even for a
 * body; the rest is the answer. Properties: those of provider.h, with
 * arguments always a JSON object's text, and a call's pieces adding up to
 * the same JSON as its arguments. (Ids are the server's, made safe only
 * when a request is built, so they are not held to tool_calls.h's rule.)
 */
#include "provider.h"

#include "provider/anthropic.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_provider_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const fz_provider p = {.read = mg_anthropic_read_answer, .object_args = 1};
    return fz_provider_one(&p, data, size);
}
