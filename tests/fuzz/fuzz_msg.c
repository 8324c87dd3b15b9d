/* fuzz_msg: the msgpack message decoder (proto/msg_decode.c) with its schema table
 * (proto/msg.c).
 *
 * Calls syn_msg_decode on any bytes. Beyond "no crash, no leak": a message it
 * accepts re-encodes (syn_msg_encode), the encoding decodes to the same type
 * and fields, encoding is a fixpoint (the second encoding is byte for byte the
 * first), and the packer (syn_pack_new/syn_pack_json/syn_pack_finish) writes
 * the same bytes from the same fields, so the two encoders never disagree. */
#include "proto/msg.h"
#include "tests/fuzz/fuzz_check.h"


/* The fields packed one by one, as the hot paths do; the caller frees. */
static char *pack_again(const syn_msg_t *msg, size_t *size)
{
    json_t *fields = syn_msg_fields(msg);
    syn_pack_t *pack = syn_pack_new(syn_msg_type(msg), json_object_size(fields));
    FUZZ_CHECK(pack != NULL);
    const char *key;
    json_t *value;
    json_object_foreach(fields, key, value)
        syn_pack_json(pack, key, value);
    char err[256];
    syn_msg_t *packed = syn_pack_finish(&pack, err, sizeof err);
    if (!packed) {
        fprintf(stderr, "fuzz_msg: the packer refused a decoded message: %s\n", err);
        abort();
    }
    char *data;
    FUZZ_CHECK(syn_msg_encode(packed, &data, size, err, sizeof err) == 0);
    syn_msg_destroy(&packed);
    return data;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    syn_msg_t *msg = syn_msg_decode(data, size, err, sizeof err);
    if (!msg) {
        FUZZ_CHECK(err[0] != '\0'); /* a refusal always says why */
        return 0;
    }
    char *first;
    size_t first_size;
    if (syn_msg_encode(msg, &first, &first_size, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_msg: a decoded message does not encode: %s\n", err);
        abort();
    }
    syn_msg_t *again = syn_msg_decode(first, first_size, err, sizeof err);
    if (!again) {
        fprintf(stderr, "fuzz_msg: an encoded message does not decode: %s\n", err);
        abort();
    }
    FUZZ_CHECK(syn_msg_type(again) == syn_msg_type(msg));
    FUZZ_CHECK(json_equal(syn_msg_fields(again), syn_msg_fields(msg)));
    char *second;
    size_t second_size;
    FUZZ_CHECK(syn_msg_encode(again, &second, &second_size, err, sizeof err) == 0);
    FUZZ_CHECK(second_size == first_size && memcmp(first, second, first_size) == 0);
    size_t packed_size;
    char *packed = pack_again(msg, &packed_size);
    FUZZ_CHECK(packed_size == first_size && memcmp(first, packed, first_size) == 0);
    free(packed);
    free(second);
    free(first);
    syn_msg_destroy(&again);
    syn_msg_destroy(&msg);
    return 0;
}
