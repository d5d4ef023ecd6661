/*
 * The example job: a hash puzzle.
 *
 * run(input, difficulty) returns the smallest counter c >= 1 such that the
 * lowercase hex SHA-256 of decimal(input) followed by decimal(c) starts with
 * `difficulty` '0' characters.  run(0, 3) == 2832, run(0, 5) == 610536.
 *
 * Freestanding on purpose: no libc, so the module built from this file has no
 * imports at all.  hash_cmd.c includes this file with WW_HASH_COMMAND defined
 * to reuse the puzzle without exporting run().
 */

typedef unsigned char u8;
typedef unsigned int u32;
typedef unsigned long long u64;

static const u32 K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
};

static u32 rotr(u32 x, int n) { return (x >> n) | (x << (32 - n)); }

/* One SHA-256 compression of a 64-byte block into state h. */
static void sha256_block(u32 h[8], const u8 block[64]) {
    u32 w[64];
    for (int i = 0; i < 16; i++) {
        w[i] = ((u32)block[4 * i] << 24) | ((u32)block[4 * i + 1] << 16) |
               ((u32)block[4 * i + 2] << 8) | (u32)block[4 * i + 3];
    }
    for (int i = 16; i < 64; i++) {
        u32 s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        u32 s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    u32 a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        u32 t1 = k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        u32 t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += k;
}

/* SHA-256 of a short message (len <= 119 bytes: at most two blocks). */
static void sha256_short(const u8 *msg, int len, u32 h[8]) {
    static const u32 H0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                              0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    u8 buf[128];
    int blocks = len + 9 <= 64 ? 1 : 2;
    int total = 64 * blocks;
    for (int i = 0; i < 8; i++) h[i] = H0[i];
    for (int i = 0; i < total; i++) buf[i] = 0;
    for (int i = 0; i < len; i++) buf[i] = msg[i];
    buf[len] = 0x80;
    u64 bits = (u64)len * 8;
    for (int i = 0; i < 8; i++) buf[total - 1 - i] = (u8)(bits >> (8 * i));
    for (int i = 0; i < blocks; i++) sha256_block(h, buf + 64 * i);
}

/* Does the hex form of digest h start with n '0' characters? */
static int leading_zero_nibbles(const u32 h[8], long long n) {
    if (n > 64) return 0;
    for (long long i = 0; i < n; i++) {
        u32 word = h[i / 8];
        u32 nibble = (word >> (28 - 4 * (i % 8))) & 0xf;
        if (nibble != 0) return 0;
    }
    return 1;
}

/* Writes decimal(v) at out, returns the number of characters (at most 20). */
static int format_decimal(long long v, u8 *out) {
    u8 tmp[20];
    int n = 0, len = 0;
    /* Negate as unsigned so that LLONG_MIN does not overflow. */
    u64 m = v < 0 ? (u64)0 - (u64)v : (u64)v;
    do {
        tmp[n++] = (u8)('0' + m % 10);
        m /= 10;
    } while (m != 0);
    if (v < 0) out[len++] = '-';
    while (n > 0) out[len++] = tmp[--n];
    return len;
}

/* Adds one to the decimal number in digits[0..*len); may grow it by a digit. */
static void increment_decimal(u8 *digits, int *len) {
    for (int i = *len - 1; i >= 0; i--) {
        if (digits[i] != '9') {
            digits[i]++;
            return;
        }
        digits[i] = '0';
    }
    for (int i = *len; i > 0; i--) digits[i] = digits[i - 1];
    digits[0] = '1';
    (*len)++;
}

static long long solve(long long input, long long difficulty) {
    u8 msg[48];
    int prefix = format_decimal(input, msg);
    int clen = 1;
    u8 *counter = msg + prefix;
    u32 h[8];
    counter[0] = '1';
    /* The counter stays below 10^19 in any run that ends in reasonable time. */
    for (long long c = 1;; c++) {
        sha256_short(msg, prefix + clen, h);
        if (leading_zero_nibbles(h, difficulty)) return c;
        increment_decimal(counter, &clen);
    }
}

#ifndef WW_HASH_COMMAND
__attribute__((export_name("run"))) long long run(long long input, long long difficulty) {
    return solve(input, difficulty);
}
#endif
