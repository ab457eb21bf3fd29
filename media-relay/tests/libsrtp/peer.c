/*
 * An SRTP peer built on libsrtp (Debian libsrtp2-dev), for media-relay/tests/libsrtp_interop.rs.
 *
 *   peer <suite> <send key hex> <receive key hex> <relay ip> <relay port> <count>
 *
 * Binds a UDP socket on 127.0.0.4 (any port) and prints "bound <port>". Then:
 *  1. sends <count> RTP packets (SSRC 0x11223344, PT 0, seq 1000.., 160-byte payload whose
 *     bytes are (seq + i) & 0xff) and one RTCP receiver report, protected with libsrtp
 *     (send key), to the relay;
 *  2. receives until it has <count> RTP packets and one RTCP packet from the relay (2 s
 *     without a datagram ends it), unprotects each with libsrtp (receive key) and prints
 *     "rtp <seq> <payload hex>" or "rtcp <ssrc hex>", or "fail <libsrtp status>".
 * Keys are master key || salt in hex. Exit status 0 unless a call into libsrtp broke.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <srtp2/srtp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int set_policy(const char *suite, srtp_crypto_policy_t *rtp, srtp_crypto_policy_t *rtcp) {
    if (!strcmp(suite, "AES_CM_128_HMAC_SHA1_80")) {
        srtp_crypto_policy_set_rtp_default(rtp);
        srtp_crypto_policy_set_rtcp_default(rtcp);
    } else if (!strcmp(suite, "AES_CM_128_HMAC_SHA1_32")) {
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(rtp);
        srtp_crypto_policy_set_rtcp_default(rtcp);
    } else if (!strcmp(suite, "AES_192_CM_HMAC_SHA1_80")) {
        srtp_crypto_policy_set_aes_cm_192_hmac_sha1_80(rtp);
        srtp_crypto_policy_set_aes_cm_192_hmac_sha1_80(rtcp);
    } else if (!strcmp(suite, "AES_192_CM_HMAC_SHA1_32")) {
        srtp_crypto_policy_set_aes_cm_192_hmac_sha1_32(rtp);
        srtp_crypto_policy_set_aes_cm_192_hmac_sha1_80(rtcp);
    } else if (!strcmp(suite, "AES_256_CM_HMAC_SHA1_80")) {
        srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(rtp);
        srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(rtcp);
    } else if (!strcmp(suite, "AES_256_CM_HMAC_SHA1_32")) {
        srtp_crypto_policy_set_aes_cm_256_hmac_sha1_32(rtp);
        srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(rtcp);
    } else if (!strcmp(suite, "AEAD_AES_128_GCM")) {
        srtp_crypto_policy_set_aes_gcm_128_16_auth(rtp);
        srtp_crypto_policy_set_aes_gcm_128_16_auth(rtcp);
    } else if (!strcmp(suite, "AEAD_AES_256_GCM")) {
        srtp_crypto_policy_set_aes_gcm_256_16_auth(rtp);
        srtp_crypto_policy_set_aes_gcm_256_16_auth(rtcp);
    } else {
        return -1;
    }
    return 0;
}

static int unhex(const char *text, unsigned char *out, size_t room) {
    size_t len = strlen(text);
    if (len % 2 || len / 2 > room) return -1;
    for (size_t i = 0; i < len / 2; i++) {
        unsigned int byte;
        if (sscanf(text + 2 * i, "%2x", &byte) != 1) return -1;
        out[i] = (unsigned char)byte;
    }
    return (int)(len / 2);
}

static srtp_t session(const char *suite, unsigned char *key, srtp_ssrc_type_t type) {
    srtp_policy_t policy;
    srtp_t s;
    memset(&policy, 0, sizeof policy);
    if (set_policy(suite, &policy.rtp, &policy.rtcp)) {
        fprintf(stderr, "unknown suite %s\n", suite);
        exit(2);
    }
    policy.ssrc.type = type;
    policy.ssrc.value = 0x11223344;
    policy.key = key;
    policy.window_size = 128;
    if (srtp_create(&s, &policy)) {
        fprintf(stderr, "srtp_create failed\n");
        exit(2);
    }
    return s;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: peer suite send-key receive-key relay-ip relay-port count\n");
        return 2;
    }
    unsigned char send_key[64], receive_key[64];
    if (unhex(argv[2], send_key, sizeof send_key) < 0 || unhex(argv[3], receive_key, sizeof receive_key) < 0) {
        fprintf(stderr, "bad key\n");
        return 2;
    }
    int count = atoi(argv[6]);
    if (srtp_init()) return 2;
    srtp_t tx = session(argv[1], send_key, ssrc_specific);
    srtp_t rx = session(argv[1], receive_key, ssrc_any_inbound);

    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in local = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.4", &local.sin_addr);
    if (bind(fd, (struct sockaddr *)&local, sizeof local)) return 2;
    socklen_t local_len = sizeof local;
    getsockname(fd, (struct sockaddr *)&local, &local_len);
    printf("bound %d\n", ntohs(local.sin_port));
    fflush(stdout);
    struct sockaddr_in relay = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[5]))};
    inet_pton(AF_INET, argv[4], &relay.sin_addr);
    struct timeval timeout = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);

    unsigned char packet[2048];
    for (int n = 0; n < count; n++) {
        unsigned short seq = (unsigned short)(1000 + n);
        memset(packet, 0, 12);
        packet[0] = 0x80;
        packet[2] = (unsigned char)(seq >> 8);
        packet[3] = (unsigned char)seq;
        unsigned int ts = 160u * (unsigned int)n;
        packet[4] = ts >> 24, packet[5] = ts >> 16, packet[6] = ts >> 8, packet[7] = ts;
        packet[8] = 0x11, packet[9] = 0x22, packet[10] = 0x33, packet[11] = 0x44;
        for (int i = 0; i < 160; i++) packet[12 + i] = (unsigned char)(seq + i);
        int len = 172;
        srtp_err_status_t status = srtp_protect(tx, packet, &len);
        if (status) {
            printf("fail protect %d\n", (int)status);
            return 1;
        }
        sendto(fd, packet, (size_t)len, 0, (struct sockaddr *)&relay, sizeof relay);
        usleep(2000);
    }
    unsigned char report[64] = {0x80, 201, 0, 1, 0x11, 0x22, 0x33, 0x44};
    int report_len = 8;
    if (srtp_protect_rtcp(tx, report, &report_len)) return 1;
    sendto(fd, report, (size_t)report_len, 0, (struct sockaddr *)&relay, sizeof relay);

    int rtp_seen = 0, rtcp_seen = 0;
    while (rtp_seen < count || !rtcp_seen) {
        ssize_t got = recv(fd, packet, sizeof packet, 0);
        if (got <= 0) break;
        int len = (int)got;
        int is_rtcp = packet[1] >= 192 && packet[1] <= 223;
        srtp_err_status_t status = is_rtcp ? srtp_unprotect_rtcp(rx, packet, &len) : srtp_unprotect(rx, packet, &len);
        if (status) {
            printf("fail %d\n", (int)status);
            continue;
        }
        if (is_rtcp) {
            rtcp_seen++;
            printf("rtcp %02x%02x%02x%02x\n", packet[4], packet[5], packet[6], packet[7]);
        } else {
            rtp_seen++;
            printf("rtp %d ", (packet[2] << 8) | packet[3]);
            for (int i = 12; i < len; i++) printf("%02x", packet[i]);
            printf("\n");
        }
        fflush(stdout);
    }
    srtp_dealloc(tx);
    srtp_dealloc(rx);
    close(fd);
    return 0;
}
