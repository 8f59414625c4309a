#ifndef TORPOR_CLIBCRYPTO_SHIM_H
#define TORPOR_CLIBCRYPTO_SHIM_H

#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/crypto.h>

/* OSSL_PARAM arrays are awkward to build from Swift; these wrappers keep the
 * parameter plumbing in C and leave Swift with plain pointers and lengths. */

/* Sets the digest of a fresh HMAC context to SHA-256. Returns 1 on success. */
static inline int torpor_hmac_set_sha256(EVP_MAC_CTX *ctx) {
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(ctx, params);
}

/* One HMAC-SHA256 over a context whose digest is already set: init with the
 * key, update, final. Writes 32 bytes to out. Returns 1 on success. */
static inline int torpor_hmac_sha256(EVP_MAC_CTX *ctx,
                                     const unsigned char *key, size_t key_len,
                                     const unsigned char *data, size_t data_len,
                                     unsigned char *out) {
    size_t out_len = 0;
    if (EVP_MAC_init(ctx, key, key_len, NULL) != 1) return 0;
    if (EVP_MAC_update(ctx, data, data_len) != 1) return 0;
    if (EVP_MAC_final(ctx, out, &out_len, 32) != 1) return 0;
    return out_len == 32;
}

/* One SHA-256 over a reusable digest context and a digest fetched once. */
static inline int torpor_sha256(EVP_MD_CTX *ctx, const EVP_MD *md,
                                const unsigned char *data, size_t data_len,
                                unsigned char *out) {
    unsigned int out_len = 0;
    if (EVP_DigestInit_ex2(ctx, md, NULL) != 1) return 0;
    if (EVP_DigestUpdate(ctx, data, data_len) != 1) return 0;
    if (EVP_DigestFinal_ex(ctx, out, &out_len) != 1) return 0;
    return out_len == 32;
}

#endif
