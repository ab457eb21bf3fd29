/*
 * libsrtp's protect and unprotect rates for 160-byte (G.711, 20 ms) payloads, measured the
 * same way as media-relay/examples/srtp_bench.rs: batches of 1024 packets of one SSRC with
 * consecutive sequence numbers are protected (timed), then unprotected by a receiver
 * (timed), on the thread's CPU clock. Replay protection is on (window 128), as in the relay.
 *
 * Built and run by bench/srtp.sh:  cc -O2 libsrtp_bench.c -lsrtp2
 * Prints one line per suite: <name> <protect/s> <unprotect/s>
 */
#include <srtp2/srtp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 1024
#define PAYLOAD 160
#define HEADER 12
#define ROOM (HEADER + PAYLOAD + SRTP_MAX_TRAILER_LEN)

static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

struct suite {
    const char *name;
    void (*set)(srtp_crypto_policy_t *);
    int key_len; /* master key + salt */
};

static void fail(const char *what, srtp_err_status_t status) {
    fprintf(stderr, "libsrtp_bench: %s failed (%d)\n", what, (int)status);
    exit(1);
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    struct suite suites[] = {
        {"AES_CM_128_HMAC_SHA1_80", srtp_crypto_policy_set_rtp_default, 30},
        {"AES_CM_128_HMAC_SHA1_32", srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32, 30},
        {"AEAD_AES_128_GCM", srtp_crypto_policy_set_aes_gcm_128_16_auth, 28},
        {"AEAD_AES_256_GCM", srtp_crypto_policy_set_aes_gcm_256_16_auth, 44},
    };
    static unsigned char packets[BATCH][ROOM];
    static int lengths[BATCH];
    unsigned char key[64];
    srtp_err_status_t status = srtp_init();
    if (status) fail("srtp_init", status);
    for (int i = 0; i < 64; i++) key[i] = (unsigned char)(i * 7 + 1);

    for (size_t s = 0; s < sizeof suites / sizeof suites[0]; s++) {
        srtp_policy_t tx, rx;
        srtp_t sender, receiver;
        memset(&tx, 0, sizeof tx);
        suites[s].set(&tx.rtp);
        suites[s].set(&tx.rtcp);
        tx.key = key;
        tx.window_size = 128;
        tx.ssrc.type = ssrc_specific;
        tx.ssrc.value = 0xcafebabe;
        rx = tx;
        rx.ssrc.type = ssrc_any_inbound;
        if ((status = srtp_create(&sender, &tx))) fail("srtp_create", status);
        if ((status = srtp_create(&receiver, &rx))) fail("srtp_create", status);

        unsigned int seq = 0;
        double protect_time = 0, unprotect_time = 0;
        long count = 0;
        while (protect_time + unprotect_time < seconds) {
            double start = cpu_seconds();
            for (int i = 0; i < BATCH; i++) {
                unsigned char *p = packets[i];
                memset(p, 0xab, HEADER + PAYLOAD);
                p[0] = 0x80;
                p[1] = 0;
                p[2] = (unsigned char)(seq >> 8);
                p[3] = (unsigned char)seq;
                p[8] = 0xca, p[9] = 0xfe, p[10] = 0xba, p[11] = 0xbe;
                seq = (seq + 1) & 0xffff;
                lengths[i] = HEADER + PAYLOAD;
                if ((status = srtp_protect(sender, p, &lengths[i]))) fail("srtp_protect", status);
            }
            double middle = cpu_seconds();
            for (int i = 0; i < BATCH; i++) {
                if ((status = srtp_unprotect(receiver, packets[i], &lengths[i])))
                    fail("srtp_unprotect", status);
            }
            double end = cpu_seconds();
            protect_time += middle - start;
            unprotect_time += end - middle;
            count += BATCH;
        }
        printf("%s %.0f %.0f\n", suites[s].name, count / protect_time, count / unprotect_time);
        srtp_dealloc(sender);
        srtp_dealloc(receiver);
    }
    return 0;
}
