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
 *
 * Shaped for WebAssembly as much as for native code (bench/native_hash.c
 * compiles this same file with gcc -O2 as the baseline): the SHA-256 rounds
 * are spelled out so that the state and the message schedule stay in locals
 * (registers) instead of linear memory, with few loop back edges (wasmtime
 * puts an epoch check on each), and the message block is built once rather
 * than per counter.
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

static const u32 H0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                          0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
#define BSIG0(x) (ROTR(x, 2) ^ ROTR(x, 13) ^ ROTR(x, 22))
#define BSIG1(x) (ROTR(x, 6) ^ ROTR(x, 11) ^ ROTR(x, 25))
#define SSIG0(x) (ROTR(x, 7) ^ ROTR(x, 18) ^ ((x) >> 3))
#define SSIG1(x) (ROTR(x, 17) ^ ROTR(x, 19) ^ ((x) >> 10))
#define CH(e, f, g) (((e) & (f)) ^ (~(e) & (g)))
#define MAJ(a, b, c) (((a) & (b)) ^ ((a) & (c)) ^ ((b) & (c)))

/* The message schedule as a 16-word window: word i (i >= 16) replaces word i - 16. */
#define W(i) w[(i) & 15]
#define LOAD_W(i) (W(i) = load_be32(block + 4 * (i)))
#define NEXT_W(i) (W(i) += SSIG1(W((i) - 2)) + W((i) - 7) + SSIG0(W((i) - 15)))

/* Round i. The callers rotate the roles of a..h instead of moving eight values. */
#define ROUND(a, b, c, d, e, f, g, h, i, wi)               \
    do {                                                   \
        u32 t1 = h + BSIG1(e) + CH(e, f, g) + K[i] + (wi); \
        d += t1;                                           \
        h = t1 + BSIG0(a) + MAJ(a, b, c);                  \
    } while (0)
#define ROUNDS8(i, WI)                                   \
    ROUND(a, b, c, d, e, f, g, h, (i), WI(i));           \
    ROUND(h, a, b, c, d, e, f, g, (i) + 1, WI((i) + 1)); \
    ROUND(g, h, a, b, c, d, e, f, (i) + 2, WI((i) + 2)); \
    ROUND(f, g, h, a, b, c, d, e, (i) + 3, WI((i) + 3)); \
    ROUND(e, f, g, h, a, b, c, d, (i) + 4, WI((i) + 4)); \
    ROUND(d, e, f, g, h, a, b, c, (i) + 5, WI((i) + 5)); \
    ROUND(c, d, e, f, g, h, a, b, (i) + 6, WI((i) + 6)); \
    ROUND(b, c, d, e, f, g, h, a, (i) + 7, WI((i) + 7))

static u32 load_be32(const u8 *p) {
    return ((u32)p[0] << 24) | ((u32)p[1] << 16) | ((u32)p[2] << 8) | (u32)p[3];
}

/* One SHA-256 compression of a 64-byte block into state s. */
static void sha256_block(u32 s[8], const u8 block[64]) {
    u32 w[16];
    u32 a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6], h = s[7];
    ROUNDS8(0, LOAD_W);
    ROUNDS8(8, LOAD_W);
    /* A loop of 16 rounds rather than 48 in a row: i is a multiple of 16, so
     * every w index in the body is still a constant, and the compiler cannot
     * hoist the whole schedule above the rounds (48 live words: Cranelift
     * would spill most of them). */
    for (int i = 16; i < 64; i += 16) {
        ROUNDS8(i, NEXT_W);
        ROUNDS8(i + 8, NEXT_W);
    }
    s[0] += a;
    s[1] += b;
    s[2] += c;
    s[3] += d;
    s[4] += e;
    s[5] += f;
    s[6] += g;
    s[7] += h;
}

/* Pads the len-byte message at the start of block as its only SHA-256 block (len <= 55). */
static void pad_block(u8 block[64], int len) {
    u64 bits = (u64)len * 8;
    block[len] = 0x80;
    for (int i = len + 1; i < 56; i++) block[i] = 0;
    for (int i = 0; i < 8; i++) block[63 - i] = (u8)(bits >> (8 * i));
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
    /* The message decimal(input) + decimal(c) is at most 20 + 19 characters,
     * so it is always one padded block; it is kept from one counter to the
     * next (usually only its last digit changes) and re-padded when the
     * counter gains a digit. */
    u8 block[64];
    int prefix = format_decimal(input, block);
    int clen = 1;
    u8 *counter = block + prefix;
    u32 h[8];
    counter[0] = '1';
    pad_block(block, prefix + clen);
    /* The counter stays below 10^19 in any run that ends in reasonable time. */
    for (long long c = 1;; c++) {
        for (int i = 0; i < 8; i++) h[i] = H0[i];
        sha256_block(h, block);
        if (leading_zero_nibbles(h, difficulty)) return c;
        int before = clen;
        increment_decimal(counter, &clen);
        if (clen != before) pad_block(block, prefix + clen);
    }
}

#ifndef WW_HASH_COMMAND
__attribute__((export_name("run"))) long long run(long long input, long long difficulty) {
    return solve(input, difficulty);
}
#endif
