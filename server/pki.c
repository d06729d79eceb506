/*
 * pki.c - keys, certificates, SSH keys and RS256 JWTs.  See pki.h.
 *
 * Only OpenSSL 3's EVP and X509 APIs: the deprecated RSA_*, EC_KEY_* and
 * friends are hidden by OPENSSL_NO_DEPRECATED below, so using one by
 * mistake fails the build instead of working until OpenSSL 4.
 *
 * Never let key material reach an or_err: messages are built from field
 * names and OpenSSL's static reason strings, and JSON parse errors report a
 * position only (jansson's message quotes the text near the error, which
 * for a service-account key file is the private key).
 */
#define OPENSSL_NO_DEPRECATED 1
#define OPENSSL_API_COMPAT 30000

#include "pki.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "buf.h"

#define PKI_DAYS_MAX 36500
#define PKI_PEM_MAX (1 << 20)	 /* a PEM bundle we read or write */
#define PKI_JWT_MAX (64 * 1024)	 /* a JWT we accept for checking */
#define PKI_SSH_COMMENT_MAX 255

struct pki_cert {
	X509 *cert;
	EVP_PKEY *key; /* NULL for a certificate loaded without its key */
};

/* ---- small helpers ------------------------------------------------------ */

/* Fail with OpenSSL's reason for the latest error (a static string that
 * never holds input data), and empty its error queue so the next caller on
 * this thread -- libcurl, libssh2 -- does not find our leftovers. */
static or_rc
ossl_fail(struct or_err *err, or_rc rc, const char *field, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;
	or_rc r;

	if (reason != NULL)
		r = or_fail(err, rc, NULL, field, "%s: %s", what, reason);
	else
		r = or_fail(err, rc, NULL, field, "%s", what);
	ERR_clear_error();
	return r;
}

static or_rc
nomem(struct or_err *err)
{
	ERR_clear_error();
	return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
}

void
pki_secret_free(char *s)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

/* PEM readers must never ask a terminal for a passphrase: the server has
 * none, and an encrypted key is simply refused. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static BIO *
bio_from_str(const char *s)
{
	size_t n = strlen(s);

	if (n > PKI_PEM_MAX)
		return NULL;
	return BIO_new_mem_buf(s, (int)n);
}

/* The contents of a memory BIO as a malloc'd string. */
static char *
bio_to_str(BIO *b)
{
	char *data = NULL, *s;
	long n = BIO_get_mem_data(b, &data);

	if (n < 0)
		return NULL;
	s = malloc((size_t)n + 1);
	if (s == NULL)
		return NULL;
	if (n > 0)
		memcpy(s, data, (size_t)n);
	s[n] = '\0';
	return s;
}

static or_rc
pem_of_cert(X509 *x, char **out, struct or_err *err)
{
	BIO *b = BIO_new(BIO_s_mem());
	or_rc rc = OR_OK;

	if (b == NULL)
		return nomem(err);
	if (PEM_write_bio_X509(b, x) != 1) {
		rc = ossl_fail(err, OR_E_IO, NULL, "cannot encode the certificate");
		goto out;
	}
	*out = bio_to_str(b);
	if (*out == NULL)
		rc = nomem(err);
out:
	BIO_free(b);
	return rc;
}

/* PKCS#8, unencrypted.  The BIO is a "secure memory" one: OpenSSL wipes
 * it when it is freed. */
static or_rc
pem_of_key(EVP_PKEY *k, char **out, struct or_err *err)
{
	BIO *b = BIO_new(BIO_s_secmem());
	or_rc rc = OR_OK;

	if (b == NULL)
		return nomem(err);
	if (PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) != 1) {
		rc = ossl_fail(err, OR_E_IO, NULL, "cannot encode the private key");
		goto out;
	}
	*out = bio_to_str(b);
	if (*out == NULL)
		rc = nomem(err);
out:
	BIO_free(b);
	return rc;
}

static EVP_PKEY *
private_from_pem(const char *pem)
{
	BIO *b = bio_from_str(pem);
	EVP_PKEY *k;

	if (b == NULL)
		return NULL;
	k = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
	BIO_free(b);
	return k;
}

/* A public key from a "PUBLIC KEY" PEM, a certificate or a private key, in
 * that order of preference. */
static EVP_PKEY *
public_from_any_pem(const char *pem)
{
	BIO *b;
	EVP_PKEY *k = NULL;
	X509 *x;

	if (strstr(pem, "-----BEGIN PUBLIC KEY-----") != NULL) {
		b = bio_from_str(pem);
		if (b != NULL)
			k = PEM_read_bio_PUBKEY(b, NULL, no_passphrase, NULL);
		BIO_free(b);
	} else if (strstr(pem, "-----BEGIN CERTIFICATE-----") != NULL) {
		b = bio_from_str(pem);
		x = b != NULL ? PEM_read_bio_X509(b, NULL, no_passphrase, NULL) : NULL;
		if (x != NULL)
			k = X509_get_pubkey(x);
		X509_free(x);
		BIO_free(b);
	} else {
		k = private_from_pem(pem);
	}
	return k;
}

/* A fresh key.  EVP_PKEY_Q_keygen is OpenSSL 3's one-call generator. */
static EVP_PKEY *
key_new(enum pki_key type)
{
	if (type == PKI_KEY_RSA_2048)
		return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

static int
is_rsa_2048_plus(EVP_PKEY *k)
{
	return EVP_PKEY_is_a(k, "RSA") && EVP_PKEY_get_bits(k) >= 2048;
}

/* Parse JSON text into an object; errors give a position, never the text
 * (see the file comment). */
static or_rc
json_object_parse(const char *text, size_t len, const char *field,
		  json_t **out, struct or_err *err)
{
	json_error_t je;
	json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);

	if (j == NULL)
		return or_fail(err, OR_E_MALFORMED, NULL, field,
			       "%s is not valid JSON (line %d, column %d)",
			       field, je.line, je.column);
	if (!json_is_object(j)) {
		json_decref(j);
		return or_fail(err, OR_E_MALFORMED, NULL, field,
			       "%s is not a JSON object", field);
	}
	*out = j;
	return OR_OK;
}

/* ---- base64 ------------------------------------------------------------- */

static const char b64_std[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *
b64_encode(const void *data, size_t len, const char *alphabet, int pad)
{
	const unsigned char *p = data;
	size_t i, o = 0;
	char *s;

	if (len > (SIZE_MAX / 4) - 3)
		return NULL;
	s = malloc(4 * ((len + 2) / 3) + 1);
	if (s == NULL)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		s[o++] = alphabet[v >> 18 & 63];
		s[o++] = alphabet[v >> 12 & 63];
		s[o++] = alphabet[v >> 6 & 63];
		s[o++] = alphabet[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;
		s[o++] = alphabet[v >> 18 & 63];
		s[o++] = alphabet[v >> 12 & 63];
		if (pad) {
			s[o++] = '=';
			s[o++] = '=';
		}
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		s[o++] = alphabet[v >> 18 & 63];
		s[o++] = alphabet[v >> 12 & 63];
		s[o++] = alphabet[v >> 6 & 63];
		if (pad)
			s[o++] = '=';
	}
	s[o] = '\0';
	return s;
}

char *
pki_b64_encode(const void *data, size_t len)
{
	return b64_encode(data, len, b64_std, 1);
}

char *
pki_b64url_encode(const void *data, size_t len)
{
	return b64_encode(data, len, b64_url, 0);
}

/* The value of one character, -1 if it is not in the alphabet. */
static int
b64_value(unsigned char c, int url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

static or_rc
b64_decode(const char *s, size_t len, int url, unsigned char **out,
	   size_t *out_len, struct or_err *err)
{
	const char *what = url ? "base64url" : "base64";
	unsigned char *d;
	size_t i, o = 0, n = len;
	uint32_t acc = 0;
	int bits = 0, v;

	*out = NULL;
	*out_len = 0;
	if (!url) {
		/* Padding is mandatory and only at the end: "xx==" or "xxx=". */
		if (len % 4 != 0)
			return or_fail(err, OR_E_MALFORMED, NULL, NULL,
				       "%s length is not a multiple of 4", what);
		if (n > 0 && s[n - 1] == '=')
			n--;
		if (n > 0 && s[n - 1] == '=')
			n--;
	}
	if (n % 4 == 1)
		return or_fail(err, OR_E_MALFORMED, NULL, NULL,
			       "%s has a wrong length", what);
	d = malloc(n / 4 * 3 + 3 + 1);
	if (d == NULL)
		return nomem(err);
	for (i = 0; i < n; i++) {
		v = b64_value((unsigned char)s[i], url);
		if (v < 0) {
			free(d);
			return or_fail(err, OR_E_MALFORMED, NULL, NULL,
				       "%s has a bad character at offset %zu",
				       what, i);
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			d[o++] = (unsigned char)(acc >> bits);
		}
	}
	/* Canonical form: the bits left over in the last character are 0, so
	 * one value has exactly one encoding (a JWT signature cannot be
	 * altered into a second valid string). */
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
		free(d);
		return or_fail(err, OR_E_MALFORMED, NULL, NULL,
			       "%s is not in canonical form", what);
	}
	d[o] = '\0';
	*out = d;
	*out_len = o;
	return OR_OK;
}

or_rc
pki_b64_decode(const char *s, size_t len, unsigned char **out, size_t *out_len,
	       struct or_err *err)
{
	return b64_decode(s, len, 0, out, out_len, err);
}

or_rc
pki_b64url_decode(const char *s, size_t len, unsigned char **out,
		  size_t *out_len, struct or_err *err)
{
	return b64_decode(s, len, 1, out, out_len, err);
}

/* ---- input checks ------------------------------------------------------- */

static int
days_ok(int days)
{
	return days >= 1 && days <= PKI_DAYS_MAX;
}

/* A name attribute: present, short, no control characters (UTF-8 is
 * checked by OpenSSL when it is added). */
static int
attr_ok(const char *s, size_t max)
{
	size_t n;

	if (s == NULL)
		return 0;
	n = strlen(s);
	if (n == 0 || n > max)
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

static int
dns_ok(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n == 0 || n > 253)
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '.' ||
		      *s == '*'))
			return 0;
	return 1;
}

/* scheme ":" then printable ASCII without spaces. */
static int
uri_ok(const char *s)
{
	const char *p = s;
	size_t n = s != NULL ? strlen(s) : 0;

	if (n == 0 || n > 2048)
		return 0;
	if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
		return 0;
	while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
	       (*p >= '0' && *p <= '9') || *p == '+' || *p == '-' || *p == '.')
		p++;
	if (*p != ':')
		return 0;
	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return 0;
	return 1;
}

/* A SPIFFE path segment or trust domain: letters, digits, '.', '-', '_'
 * (trust domains lowercase only), never "." or "..". */
static int
spiffe_part_ok(const char *s, size_t max, int lower_only)
{
	size_t n = s != NULL ? strlen(s) : 0;
	const char *p;

	if (n == 0 || n > max || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	for (p = s; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') ||
		      (!lower_only && *p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' ||
		      *p == '_'))
			return 0;
	return 1;
}

/* ---- certificates ------------------------------------------------------- */

void
pki_cert_free(struct pki_cert *c)
{
	if (c == NULL)
		return;
	X509_free(c->cert);
	EVP_PKEY_free(c->key);
	free(c);
}

or_rc
pki_cert_pem(const struct pki_cert *c, char **cert_pem, char **key_pem,
	     struct or_err *err)
{
	char *cp = NULL, *kp = NULL;
	or_rc rc;

	*cert_pem = NULL;
	if (key_pem != NULL)
		*key_pem = NULL;
	if (key_pem != NULL && c->key == NULL)
		return or_fail(err, OR_E_INVALID, NULL, "key_pem",
			       "this certificate was loaded without its key");
	rc = pem_of_cert(c->cert, &cp, err);
	if (rc != OR_OK)
		goto out;
	if (key_pem != NULL) {
		rc = pem_of_key(c->key, &kp, err);
		if (rc != OR_OK)
			goto out;
	}
	*cert_pem = cp;
	cp = NULL;
	if (key_pem != NULL) {
		*key_pem = kp;
		kp = NULL;
	}
out:
	free(cp);
	pki_secret_free(kp);
	return rc;
}

or_rc
pki_cert_load(const char *cert_pem, const char *key_pem, struct pki_cert **out,
	      struct or_err *err)
{
	struct pki_cert *c;
	BIO *b = NULL;
	or_rc rc = OR_OK;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return nomem(err);
	if (cert_pem == NULL) {
		rc = or_fail(err, OR_E_INVALID, NULL, "cert_pem",
			     "no certificate given");
		goto out;
	}
	b = bio_from_str(cert_pem);
	if (b == NULL) {
		rc = or_fail(err, OR_E_INVALID, NULL, "cert_pem",
			     "certificate PEM too large");
		goto out;
	}
	c->cert = PEM_read_bio_X509(b, NULL, no_passphrase, NULL);
	if (c->cert == NULL) {
		rc = ossl_fail(err, OR_E_INVALID, "cert_pem",
			       "cert_pem holds no readable PEM certificate");
		goto out;
	}
	if (key_pem != NULL) {
		c->key = private_from_pem(key_pem);
		if (c->key == NULL) {
			rc = ossl_fail(err, OR_E_INVALID, "key_pem",
				       "key_pem holds no readable unencrypted private key");
			goto out;
		}
		if (X509_check_private_key(c->cert, c->key) != 1) {
			rc = ossl_fail(err, OR_E_INVALID, "key_pem",
				       "key_pem does not match the certificate");
			goto out;
		}
	}
	*out = c;
	c = NULL;
out:
	BIO_free(b);
	pki_cert_free(c);
	return rc;
}

/* A random positive serial of 16 bytes (RFC 5280 allows 20; CA/B asks for
 * 64 bits of entropy).  The top bit is cleared so DER needs no sign byte. */
static int
serial_set(X509 *x)
{
	unsigned char r[16];
	BIGNUM *bn;
	int ok = 0;

	if (RAND_bytes(r, sizeof(r)) != 1)
		return 0;
	r[0] &= 0x7f;
	r[0] |= 0x40; /* never a short (or zero) serial */
	bn = BN_bin2bn(r, sizeof(r), NULL);
	if (bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL)
		ok = 1;
	BN_free(bn);
	return ok;
}

static int
name_add(X509_NAME *n, const char *field, const char *value)
{
	if (value == NULL || value[0] == '\0')
		return 1;
	return X509_NAME_add_entry_by_txt(n, field, MBSTRING_UTF8,
					  (const unsigned char *)value, -1, -1, 0);
}

static int
ext_add(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
	int ok;

	if (e == NULL)
		return 0;
	ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok;
}

/* One GENERAL_NAME of an IA5 type (DNS, URI) or an IP address. */
static int
gen_push(GENERAL_NAMES *gens, int type, const char *value)
{
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_STRING *s = NULL;
	unsigned char ip[16];
	int iplen = 0;

	if (g == NULL)
		return 0;
	if (type == GEN_IPADD) {
		if (inet_pton(AF_INET, value, ip) == 1)
			iplen = 4;
		else if (inet_pton(AF_INET6, value, ip) == 1)
			iplen = 16;
		s = ASN1_OCTET_STRING_new();
		if (s == NULL || iplen == 0 || !ASN1_OCTET_STRING_set(s, ip, iplen))
			goto fail;
	} else {
		s = ASN1_IA5STRING_new();
		if (s == NULL || !ASN1_STRING_set(s, value, -1))
			goto fail;
	}
	GENERAL_NAME_set0_value(g, type, s);
	s = NULL;
	if (sk_GENERAL_NAME_push(gens, g) <= 0)
		goto fail;
	return 1;
fail:
	ASN1_STRING_free(s);
	GENERAL_NAME_free(g);
	return 0;
}

/*
 * Check an issue request; field names are those of struct pki_issue_opts.
 * SANs are built as GENERAL_NAMEs, not as an OpenSSL config string, so a
 * value with a comma cannot smuggle in a second name of another type.
 */
static or_rc
opts_check(const struct pki_issue_opts *o, struct or_err *err)
{
	size_t i;
	unsigned char ip[16];

	if (!attr_ok(o->cn, 64))
		return or_fail(err, OR_E_INVALID, NULL, "cn",
			       "cn must be 1 to 64 bytes without control characters");
	if (o->org != NULL && o->org[0] != '\0' && !attr_ok(o->org, 64))
		return or_fail(err, OR_E_INVALID, NULL, "org",
			       "org must be at most 64 bytes without control characters");
	if (o->locality != NULL && o->locality[0] != '\0' &&
	    !attr_ok(o->locality, 128))
		return or_fail(err, OR_E_INVALID, NULL, "locality",
			       "locality must be at most 128 bytes without control characters");
	if (!days_ok(o->days))
		return or_fail(err, OR_E_INVALID, NULL, "days",
			       "days must be 1 to %d", PKI_DAYS_MAX);
	if (o->key != PKI_KEY_EC_P256 && o->key != PKI_KEY_RSA_2048)
		return or_fail(err, OR_E_INVALID, NULL, "key", "unknown key type");
	if (o->is_ca && o->pathlen < -1)
		return or_fail(err, OR_E_INVALID, NULL, "pathlen",
			       "pathlen must be -1 (no limit) or more");
	for (i = 0; i < o->n_dns; i++)
		if (!dns_ok(o->dns[i]))
			return or_fail(err, OR_E_INVALID, NULL, "dns",
				       "dns[%zu] is not a DNS name", i);
	for (i = 0; i < o->n_ips; i++)
		if (o->ips[i] == NULL ||
		    (inet_pton(AF_INET, o->ips[i], ip) != 1 &&
		     inet_pton(AF_INET6, o->ips[i], ip) != 1))
			return or_fail(err, OR_E_INVALID, NULL, "ips",
				       "ips[%zu] is not an IPv4 or IPv6 address", i);
	for (i = 0; i < o->n_uris; i++)
		if (!uri_ok(o->uris[i]))
			return or_fail(err, OR_E_INVALID, NULL, "uris",
				       "uris[%zu] is not a URI", i);
	return OR_OK;
}

static int
san_add(X509 *x, const struct pki_issue_opts *o)
{
	GENERAL_NAMES *gens;
	size_t i;
	int ok = 0;

	if (o->n_dns + o->n_ips + o->n_uris == 0)
		return 1;
	gens = sk_GENERAL_NAME_new_null();
	if (gens == NULL)
		return 0;
	for (i = 0; i < o->n_dns; i++)
		if (!gen_push(gens, GEN_DNS, o->dns[i]))
			goto out;
	for (i = 0; i < o->n_ips; i++)
		if (!gen_push(gens, GEN_IPADD, o->ips[i]))
			goto out;
	for (i = 0; i < o->n_uris; i++)
		if (!gen_push(gens, GEN_URI, o->uris[i]))
			goto out;
	ok = X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
			       X509V3_ADD_DEFAULT) == 1;
out:
	GENERAL_NAMES_free(gens);
	return ok;
}

/*
 * Build and sign a certificate for subject_key.  issuer NULL: self-signed
 * with subject_key.  o has been checked.
 */
static or_rc
cert_build(const struct pki_cert *issuer, EVP_PKEY *subject_key,
	   const struct pki_issue_opts *o, X509 **out, struct or_err *err)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	EVP_PKEY *sign_key = issuer != NULL ? issuer->key : subject_key;
	X509V3_CTX ctx;
	char bc[64], ku[96], eku[64];
	or_rc rc = OR_OK;

	*out = NULL;
	if (x == NULL || name == NULL) {
		rc = nomem(err);
		goto out;
	}
	if (!X509_set_version(x, X509_VERSION_3) || !serial_set(x)) {
		rc = ossl_fail(err, OR_E_IO, NULL, "cannot set the serial number");
		goto out;
	}
	if (!name_add(name, "O", o->org) || !name_add(name, "L", o->locality) ||
	    !name_add(name, "CN", o->cn)) {
		rc = ossl_fail(err, OR_E_INVALID, "cn",
			       "the subject name is not valid UTF-8 or too long");
		goto out;
	}
	if (!X509_set_subject_name(x, name) ||
	    !X509_set_issuer_name(x, issuer != NULL ?
					     X509_get_subject_name(issuer->cert) :
					     name)) {
		rc = ossl_fail(err, OR_E_IO, NULL, "cannot set the names");
		goto out;
	}
	/* Valid from five minutes ago: a verifier whose clock is a little
	 * behind ours must not see a certificate "not yet valid". */
	if (X509_gmtime_adj(X509_getm_notBefore(x), -300) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), o->days, 0, NULL) == NULL) {
		rc = ossl_fail(err, OR_E_IO, NULL, "cannot set the validity");
		goto out;
	}
	/* Never outlive the issuer: the chain would stop verifying then
	 * anyway, and a date that says otherwise misleads whoever reads it. */
	if (issuer != NULL &&
	    ASN1_TIME_compare(X509_get0_notAfter(x),
			      X509_get0_notAfter(issuer->cert)) > 0 &&
	    !X509_set1_notAfter(x, X509_get0_notAfter(issuer->cert))) {
		rc = ossl_fail(err, OR_E_IO, NULL, "cannot set the validity");
		goto out;
	}
	if (!X509_set_pubkey(x, subject_key)) {
		rc = ossl_fail(err, OR_E_IO, NULL, "cannot set the public key");
		goto out;
	}

	if (o->is_ca && o->pathlen >= 0)
		snprintf(bc, sizeof(bc), "critical,CA:TRUE,pathlen:%d", o->pathlen);
	else
		snprintf(bc, sizeof(bc), "critical,CA:%s", o->is_ca ? "TRUE" : "FALSE");
	/* keyEncipherment only means something for RSA (TLS 1.2 RSA key
	 * exchange); on an EC key it is wrong, and strict verifiers say so. */
	if (o->is_ca)
		snprintf(ku, sizeof(ku), "critical,digitalSignature,keyCertSign,cRLSign");
	else
		snprintf(ku, sizeof(ku), "critical,digitalSignature%s",
			 EVP_PKEY_is_a(subject_key, "RSA") ? ",keyEncipherment" : "");
	snprintf(eku, sizeof(eku), "%s%s%s", o->server_auth ? "serverAuth" : "",
		 o->server_auth && o->client_auth ? "," : "",
		 o->client_auth ? "clientAuth" : "");

	X509V3_set_ctx(&ctx, issuer != NULL ? issuer->cert : x, x, NULL, NULL, 0);
	if (!ext_add(x, &ctx, NID_basic_constraints, bc) ||
	    !ext_add(x, &ctx, NID_key_usage, ku) ||
	    (eku[0] != '\0' && !ext_add(x, &ctx, NID_ext_key_usage, eku)) ||
	    !ext_add(x, &ctx, NID_subject_key_identifier, "hash") ||
	    /* "keyid": the issuer's subjectKeyIdentifier.  Not on a root,
	     * where it would only repeat its own. */
	    (issuer != NULL &&
	     !ext_add(x, &ctx, NID_authority_key_identifier, "keyid")) ||
	    !san_add(x, o)) {
		rc = ossl_fail(err, OR_E_IO, NULL, "cannot add the extensions");
		goto out;
	}
	if (X509_sign(x, sign_key, EVP_sha256()) <= 0) {
		rc = ossl_fail(err, OR_E_IO, NULL, "cannot sign the certificate");
		goto out;
	}
	*out = x;
	x = NULL;
out:
	X509_NAME_free(name);
	X509_free(x);
	return rc;
}

or_rc
pki_ca_new(const char *org, const char *cn, int days, struct pki_cert **out,
	   struct or_err *err)
{
	struct pki_issue_opts o = {0};
	struct pki_cert *c = NULL;
	or_rc rc;

	*out = NULL;
	o.cn = cn;
	o.org = org;
	o.days = days;
	o.is_ca = 1;
	o.pathlen = -1;
	rc = opts_check(&o, err);
	if (rc != OR_OK)
		goto out;
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		rc = nomem(err);
		goto out;
	}
	c->key = key_new(PKI_KEY_EC_P256);
	if (c->key == NULL) {
		rc = ossl_fail(err, OR_E_IO, NULL, "cannot generate a key");
		goto out;
	}
	rc = cert_build(NULL, c->key, &o, &c->cert, err);
	if (rc != OR_OK)
		goto out;
	*out = c;
	c = NULL;
out:
	pki_cert_free(c);
	return rc;
}

or_rc
pki_issue(const struct pki_cert *ca, const struct pki_issue_opts *o,
	  struct pki_cert **out, struct or_err *err)
{
	struct pki_cert *c = NULL;
	or_rc rc;

	*out = NULL;
	if (ca == NULL || ca->key == NULL)
		return or_fail(err, OR_E_INVALID, NULL, "ca",
			       "the issuer has no private key");
	if (X509_check_ca(ca->cert) != 1)
		return or_fail(err, OR_E_INVALID, NULL, "ca",
			       "the issuer is not a CA certificate");
	/* A CA under a pathlen:0 CA would make every chain through it fail. */
	if (o->is_ca && X509_get_pathlen(ca->cert) == 0)
		return or_fail(err, OR_E_INVALID, NULL, "is_ca",
			       "the issuer (pathlen 0) may not sign CA certificates");
	rc = opts_check(o, err);
	if (rc != OR_OK)
		goto out;
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		rc = nomem(err);
		goto out;
	}
	c->key = key_new(o->key);
	if (c->key == NULL) {
		rc = ossl_fail(err, OR_E_IO, NULL, "cannot generate a key");
		goto out;
	}
	rc = cert_build(ca, c->key, o, &c->cert, err);
	if (rc != OR_OK)
		goto out;
	*out = c;
	c = NULL;
out:
	pki_cert_free(c);
	return rc;
}

/* Every certificate of a PEM bundle, at least one. */
static or_rc
certs_read(const char *pem, const char *field, STACK_OF(X509) **out,
	   struct or_err *err)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	BIO *b = NULL;
	X509 *x;
	or_rc rc = OR_OK;

	*out = NULL;
	if (sk == NULL)
		return nomem(err);
	if (pem == NULL) {
		rc = or_fail(err, OR_E_INVALID, NULL, field, "no %s given", field);
		goto out;
	}
	b = bio_from_str(pem);
	if (b == NULL) {
		rc = or_fail(err, OR_E_INVALID, NULL, field, "%s is too large", field);
		goto out;
	}
	for (;;) {
		x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL);
		if (x == NULL)
			break;
		if (sk_X509_push(sk, x) <= 0) {
			X509_free(x);
			rc = nomem(err);
			goto out;
		}
	}
	ERR_clear_error(); /* the end of the input reads as an error */
	if (sk_X509_num(sk) == 0) {
		rc = or_fail(err, OR_E_INVALID, NULL, field,
			     "%s holds no PEM certificate", field);
		goto out;
	}
	*out = sk;
	sk = NULL;
out:
	BIO_free(b);
	sk_X509_pop_free(sk, X509_free);
	return rc;
}

or_rc
pki_chain_verify(const char *root_pem, const char *chain_pem,
		 const char *cert_pem, struct or_err *err)
{
	STACK_OF(X509) *roots = NULL, *chain = NULL, *leaf = NULL;
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	or_rc rc;
	int i;

	rc = certs_read(root_pem, "root_pem", &roots, err);
	if (rc != OR_OK)
		goto out;
	if (chain_pem != NULL) {
		rc = certs_read(chain_pem, "chain_pem", &chain, err);
		if (rc != OR_OK)
			goto out;
	}
	rc = certs_read(cert_pem, "cert_pem", &leaf, err);
	if (rc != OR_OK)
		goto out;
	store = X509_STORE_new();
	ctx = X509_STORE_CTX_new();
	if (store == NULL || ctx == NULL) {
		rc = nomem(err);
		goto out;
	}
	for (i = 0; i < sk_X509_num(roots); i++)
		if (!X509_STORE_add_cert(store, sk_X509_value(roots, i))) {
			rc = ossl_fail(err, OR_E_INVALID, "root_pem",
				       "cannot use the root certificate");
			goto out;
		}
	if (!X509_STORE_CTX_init(ctx, store, sk_X509_value(leaf, 0), chain)) {
		rc = ossl_fail(err, OR_E_IO, NULL, "cannot set up the verification");
		goto out;
	}
	if (X509_verify_cert(ctx) != 1) {
		rc = or_fail(err, OR_E_INVALID, NULL, "cert_pem",
			     "the certificate does not verify: %s",
			     X509_verify_cert_error_string(
				     X509_STORE_CTX_get_error(ctx)));
		ERR_clear_error();
		goto out;
	}
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	sk_X509_pop_free(roots, X509_free);
	sk_X509_pop_free(chain, X509_free);
	sk_X509_pop_free(leaf, X509_free);
	return rc;
}

/* ---- Istio -------------------------------------------------------------- */

void
pki_istio_clear(struct pki_istio *p)
{
	if (p == NULL)
		return;
	free(p->root_cert);
	free(p->ca_cert);
	pki_secret_free(p->ca_key);
	free(p->cert_chain);
	pki_secret_free(p->root_key);
	memset(p, 0, sizeof(*p));
}

/* a, b and c (may be NULL) joined, malloc'd. */
static or_rc
str_join(const char *a, const char *b, const char *c, char **out,
	 struct or_err *err)
{
	struct buf bb;
	or_rc rc;

	buf_init(&bb, 3 * PKI_PEM_MAX);
	rc = buf_append_str(&bb, a);
	if (rc == OR_OK)
		rc = buf_append_str(&bb, b);
	if (rc == OR_OK && c != NULL)
		rc = buf_append_str(&bb, c);
	if (rc != OR_OK) {
		buf_free(&bb);
		return or_fail(err, rc, NULL, NULL, "cannot join the PEM files");
	}
	*out = buf_detach(&bb);
	return *out != NULL ? OR_OK : nomem(err);
}

or_rc
pki_istio_cacerts(const struct pki_cert *root, const char *org,
		  const char *cluster, int days, struct pki_istio *out,
		  struct or_err *err)
{
	/* istiod's own service name, as tools/certs/common.mk puts it in
	 * INTERMEDIATE_SAN_DNS. */
	static const char *const san_dns[] = {"istiod.istio-system.svc"};
	struct pki_cert *new_root = NULL, *inter = NULL;
	struct pki_issue_opts o = {0};
	struct pki_istio r = {0};
	or_rc rc;

	memset(out, 0, sizeof(*out));
	if (root == NULL) {
		rc = pki_ca_new(org, "Root CA", days, &new_root, err);
		if (rc != OR_OK)
			goto out;
		root = new_root;
	}
	o.cn = "Intermediate CA";
	o.org = org;
	o.locality = cluster;
	o.days = days;
	o.is_ca = 1;
	o.pathlen = 0;
	o.dns = san_dns;
	o.n_dns = 1;
	rc = pki_issue(root, &o, &inter, err);
	if (rc != OR_OK)
		goto out;
	rc = pki_cert_pem(inter, &r.ca_cert, &r.ca_key, err);
	if (rc != OR_OK)
		goto out;
	rc = pki_cert_pem(root, &r.root_cert, new_root != NULL ? &r.root_key : NULL,
			  err);
	if (rc != OR_OK)
		goto out;
	rc = str_join(r.ca_cert, r.root_cert, NULL, &r.cert_chain, err);
	if (rc != OR_OK)
		goto out;
	*out = r;
	memset(&r, 0, sizeof(r));
out:
	pki_istio_clear(&r);
	pki_cert_free(inter);
	pki_cert_free(new_root);
	return rc;
}

void
pki_workload_clear(struct pki_workload *w)
{
	if (w == NULL)
		return;
	pki_secret_free(w->key);
	free(w->cert);
	free(w->cert_chain);
	free(w->root_cert);
	memset(w, 0, sizeof(*w));
}

or_rc
pki_workload_cert(const struct pki_cert *ca, const char *root_pem,
		  const char *trust_domain, const char *ns, const char *sa,
		  int days, struct pki_workload *out, struct or_err *err)
{
	struct pki_issue_opts o = {0};
	struct pki_cert *leaf = NULL, *root = NULL;
	struct pki_workload r = {0};
	const char *uris[1];
	char uri[1024], *ca_pem = NULL;
	int root_is_ca;
	or_rc rc;

	memset(out, 0, sizeof(*out));
	if (!spiffe_part_ok(trust_domain, 255, 1))
		return or_fail(err, OR_E_INVALID, NULL, "trust_domain",
			       "trust_domain must be 1 to 255 of [a-z0-9._-]");
	if (!spiffe_part_ok(ns, 253, 0))
		return or_fail(err, OR_E_INVALID, NULL, "ns",
			       "ns must be 1 to 253 of [A-Za-z0-9._-]");
	if (!spiffe_part_ok(sa, 253, 0))
		return or_fail(err, OR_E_INVALID, NULL, "sa",
			       "sa must be 1 to 253 of [A-Za-z0-9._-]");
	/* Fits: 9 + 255 + 4 + 253 + 4 + 253 < 1024. */
	snprintf(uri, sizeof(uri), "spiffe://%s/ns/%s/sa/%s", trust_domain, ns, sa);
	uris[0] = uri;
	/* CN is capped at 64 bytes; a longer service-account name is still
	 * the whole identity in the SAN, which is what Istio reads. */
	o.cn = strlen(sa) <= 64 ? sa : "workload";
	o.locality = ns;
	o.days = days;
	o.key = PKI_KEY_EC_P256;
	o.uris = uris;
	o.n_uris = 1;
	o.server_auth = 1;
	o.client_auth = 1;
	rc = pki_issue(ca, &o, &leaf, err);
	if (rc != OR_OK)
		goto out;
	rc = pki_cert_pem(leaf, &r.cert, &r.key, err);
	if (rc != OR_OK)
		goto out;
	rc = pki_cert_pem(ca, &ca_pem, NULL, err);
	if (rc != OR_OK)
		goto out;
	root_is_ca = 1;
	if (root_pem != NULL) {
		rc = pki_cert_load(root_pem, NULL, &root, err);
		if (rc != OR_OK) {
			rc = or_fail(err, OR_E_INVALID, NULL, "root_pem",
				     "root_pem holds no readable PEM certificate");
			goto out;
		}
		root_is_ca = X509_cmp(root->cert, ca->cert) == 0;
		rc = pki_cert_pem(root, &r.root_cert, NULL, err);
		if (rc != OR_OK)
			goto out;
	} else {
		r.root_cert = strdup(ca_pem);
		if (r.root_cert == NULL) {
			rc = nomem(err);
			goto out;
		}
	}
	rc = str_join(r.cert, ca_pem, root_is_ca ? NULL : r.root_cert,
		      &r.cert_chain, err);
	if (rc != OR_OK)
		goto out;
	/* A root_pem that is not the CA's root would hand the VM a chain
	 * nobody can verify; find out now rather than at the first TLS
	 * handshake. */
	rc = pki_chain_verify(r.root_cert, r.cert_chain, r.cert, err);
	if (rc != OR_OK) {
		rc = or_fail(err, OR_E_INVALID, NULL, "root_pem",
			     "the CA does not chain to root_pem");
		goto out;
	}
	*out = r;
	memset(&r, 0, sizeof(r));
out:
	free(ca_pem);
	pki_cert_free(root);
	pki_cert_free(leaf);
	pki_workload_clear(&r);
	return rc;
}

/* ---- SSH ---------------------------------------------------------------- */

/* A bounded writer over a caller's fixed array.  The SSH private key is
 * assembled in stack arrays, wiped afterwards: a growing heap buffer
 * would leave copies of the key in freed memory. */
struct wr {
	unsigned char *p;
	size_t len, cap;
	int over;
};

static void
wr_bytes(struct wr *w, const void *d, size_t n)
{
	if (w->over || n > w->cap - w->len) {
		w->over = 1;
		return;
	}
	memcpy(w->p + w->len, d, n);
	w->len += n;
}

static void
wr_u32(struct wr *w, uint32_t v)
{
	unsigned char b[4];

	b[0] = (unsigned char)(v >> 24);
	b[1] = (unsigned char)(v >> 16);
	b[2] = (unsigned char)(v >> 8);
	b[3] = (unsigned char)v;
	wr_bytes(w, b, 4);
}

/* An SSH "string": uint32 length, then the bytes (RFC 4251 5). */
static void
wr_str(struct wr *w, const void *d, size_t n)
{
	wr_u32(w, (uint32_t)n);
	wr_bytes(w, d, n);
}

static int
comment_ok(const char *s)
{
	if (strlen(s) > PKI_SSH_COMMENT_MAX)
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

/*
 * The "openssh-key-v1" container (OpenSSH's PROTOCOL.key), unencrypted:
 *   "openssh-key-v1\0" string "none" string "none" string "" uint32 1
 *   string public-blob
 *   string private-section, padded with 1, 2, 3 ... to a multiple of 8:
 *     uint32 check, uint32 check (equal: a decryption check)
 *     string "ssh-ed25519" string pub(32) string seed(32)||pub(32)
 *     string comment
 * base64 in lines of 70 between BEGIN/END OPENSSH PRIVATE KEY, as
 * ssh-keygen writes it.
 */
static or_rc
ssh_private_container(const unsigned char *blob, size_t blob_len,
		      const unsigned char pub[32], const unsigned char seed[32],
		      const char *comment, char **out, struct or_err *err)
{
	static const char head[] = "-----BEGIN OPENSSH PRIVATE KEY-----\n";
	static const char tail[] = "-----END OPENSSH PRIVATE KEY-----\n";
	unsigned char priv[512], file[1024], sk[64];
	struct wr w = {priv, 0, sizeof(priv), 0};
	struct wr f = {file, 0, sizeof(file), 0};
	uint32_t check;
	unsigned char pad = 1;
	char *b64 = NULL, *s = NULL;
	size_t n, i, o;
	or_rc rc = OR_OK;

	if (RAND_bytes((unsigned char *)&check, sizeof(check)) != 1) {
		rc = ossl_fail(err, OR_E_IO, NULL, "no random bytes");
		goto out;
	}
	memcpy(sk, seed, 32);
	memcpy(sk + 32, pub, 32);
	wr_u32(&w, check);
	wr_u32(&w, check);
	wr_str(&w, "ssh-ed25519", 11);
	wr_str(&w, pub, 32);
	wr_str(&w, sk, 64);
	wr_str(&w, comment, strlen(comment));
	while (w.len % 8 != 0) {
		wr_bytes(&w, &pad, 1);
		pad++;
	}

	wr_bytes(&f, "openssh-key-v1", 15); /* with its NUL */
	wr_str(&f, "none", 4);
	wr_str(&f, "none", 4);
	wr_str(&f, "", 0);
	wr_u32(&f, 1);
	wr_str(&f, blob, blob_len);
	wr_str(&f, priv, w.len);
	if (w.over || f.over) { /* cannot happen: the comment is bounded */
		rc = or_fail(err, OR_E_IO, NULL, NULL, "SSH key container overflow");
		goto out;
	}
	b64 = pki_b64_encode(file, f.len);
	if (b64 == NULL) {
		rc = nomem(err);
		goto out;
	}
	n = strlen(b64);
	s = malloc(sizeof(head) + n + n / 70 + 1 + sizeof(tail));
	if (s == NULL) {
		rc = nomem(err);
		goto out;
	}
	memcpy(s, head, sizeof(head) - 1);
	o = sizeof(head) - 1;
	for (i = 0; i < n; i += 70) {
		size_t k = n - i < 70 ? n - i : 70;
		memcpy(s + o, b64 + i, k);
		o += k;
		s[o++] = '\n';
	}
	memcpy(s + o, tail, sizeof(tail)); /* with its NUL */
	*out = s;
out:
	OPENSSL_cleanse(priv, sizeof(priv));
	OPENSSL_cleanse(file, sizeof(file));
	OPENSSL_cleanse(sk, sizeof(sk));
	pki_secret_free(b64);
	return rc;
}

or_rc
pki_ssh_keypair(const char *comment, char **private_key,
		char **authorized_key, struct or_err *err)
{
	EVP_PKEY *k = NULL;
	unsigned char pub[32], seed[32], blob[64];
	struct wr b = {blob, 0, sizeof(blob), 0};
	size_t pub_len = sizeof(pub), seed_len = sizeof(seed);
	char *priv = NULL, *b64 = NULL;
	struct buf line;
	or_rc rc;

	*private_key = NULL;
	*authorized_key = NULL;
	buf_init(&line, 4096);
	if (comment == NULL)
		comment = "";
	if (!comment_ok(comment))
		return or_fail(err, OR_E_INVALID, NULL, "comment",
			       "comment must be at most %d printable ASCII characters",
			       PKI_SSH_COMMENT_MAX);
	k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (k == NULL) {
		rc = ossl_fail(err, OR_E_IO, NULL, "cannot generate an ed25519 key");
		goto out;
	}
	if (EVP_PKEY_get_raw_public_key(k, pub, &pub_len) != 1 || pub_len != 32 ||
	    EVP_PKEY_get_raw_private_key(k, seed, &seed_len) != 1 ||
	    seed_len != 32) {
		rc = ossl_fail(err, OR_E_IO, NULL, "cannot read the ed25519 key");
		goto out;
	}
	/* The wire blob (RFC 8709): string "ssh-ed25519", string key. */
	wr_str(&b, "ssh-ed25519", 11);
	wr_str(&b, pub, 32);
	rc = ssh_private_container(blob, b.len, pub, seed, comment, &priv, err);
	if (rc != OR_OK)
		goto out;
	b64 = pki_b64_encode(blob, b.len);
	if (b64 == NULL) {
		rc = nomem(err);
		goto out;
	}
	rc = buf_printf(&line, "ssh-ed25519 %s%s%s", b64, comment[0] ? " " : "",
			comment);
	if (rc != OR_OK) {
		rc = or_fail(err, rc, NULL, NULL, "cannot build the public key line");
		goto out;
	}
	*authorized_key = buf_detach(&line);
	if (*authorized_key == NULL) {
		rc = nomem(err);
		goto out;
	}
	*private_key = priv;
	priv = NULL;
out:
	OPENSSL_cleanse(seed, sizeof(seed));
	EVP_PKEY_free(k);
	pki_secret_free(priv);
	free(b64);
	buf_free(&line);
	return rc;
}

or_rc
pki_ssh_fingerprint(const char *authorized_key, char **fingerprint,
		    struct or_err *err)
{
	const char *type, *p, *key;
	size_t type_len, key_len, blob_len, n;
	unsigned char *blob = NULL, md[32];
	unsigned int md_len = 0;
	uint32_t tl;
	char *b64 = NULL;
	struct buf fp;
	or_rc rc;

	*fingerprint = NULL;
	buf_init(&fp, 128);
	if (authorized_key == NULL || strlen(authorized_key) > 16384)
		return or_fail(err, OR_E_INVALID, NULL, "authorized_key",
			       "no public key line, or one over 16 KiB");
	p = authorized_key;
	while (*p == ' ' || *p == '\t')
		p++;
	type = p;
	while (*p != '\0' && *p != ' ' && *p != '\t')
		p++;
	type_len = (size_t)(p - type);
	while (*p == ' ' || *p == '\t')
		p++;
	key = p;
	while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
		p++;
	key_len = (size_t)(p - key);
	if (type_len == 0 || key_len == 0)
		return or_fail(err, OR_E_INVALID, NULL, "authorized_key",
			       "expected \"TYPE BASE64 [comment]\"");
	rc = pki_b64_decode(key, key_len, &blob, &blob_len, err);
	if (rc != OR_OK) {
		rc = or_fail(err, OR_E_INVALID, NULL, "authorized_key",
			     "the key is not valid base64");
		goto out;
	}
	/* The blob starts with its own type name, which must be TYPE. */
	if (blob_len < 4) {
		rc = or_fail(err, OR_E_INVALID, NULL, "authorized_key",
			     "the key blob is too short");
		goto out;
	}
	tl = (uint32_t)blob[0] << 24 | (uint32_t)blob[1] << 16 |
	     (uint32_t)blob[2] << 8 | blob[3];
	if (tl != type_len || blob_len - 4 < tl ||
	    memcmp(blob + 4, type, type_len) != 0) {
		rc = or_fail(err, OR_E_INVALID, NULL, "authorized_key",
			     "the key blob does not match its type");
		goto out;
	}
	if (EVP_Digest(blob, blob_len, md, &md_len, EVP_sha256(), NULL) != 1) {
		rc = ossl_fail(err, OR_E_IO, NULL, "cannot hash the key");
		goto out;
	}
	b64 = pki_b64_encode(md, md_len);
	if (b64 == NULL) {
		rc = nomem(err);
		goto out;
	}
	n = strlen(b64);
	while (n > 0 && b64[n - 1] == '=') /* ssh-keygen drops the padding */
		b64[--n] = '\0';
	rc = buf_printf(&fp, "SHA256:%s", b64);
	if (rc != OR_OK) {
		rc = or_fail(err, rc, NULL, NULL, "cannot build the fingerprint");
		goto out;
	}
	*fingerprint = buf_detach(&fp);
	if (*fingerprint == NULL)
		rc = nomem(err);
out:
	free(blob);
	free(b64);
	buf_free(&fp);
	return rc;
}

/* ---- keys and JWTs ------------------------------------------------------ */

or_rc
pki_public_pem_from_private(const char *private_pem, char **public_pem,
			    struct or_err *err)
{
	EVP_PKEY *k = NULL;
	BIO *b = NULL;
	or_rc rc = OR_OK;

	*public_pem = NULL;
	if (private_pem == NULL)
		return or_fail(err, OR_E_INVALID, NULL, "private_pem",
			       "no private key given");
	k = private_from_pem(private_pem);
	if (k == NULL) {
		rc = ossl_fail(err, OR_E_INVALID, "private_pem",
			       "private_pem holds no readable unencrypted private key");
		goto out;
	}
	b = BIO_new(BIO_s_mem());
	if (b == NULL) {
		rc = nomem(err);
		goto out;
	}
	if (PEM_write_bio_PUBKEY(b, k) != 1) {
		rc = ossl_fail(err, OR_E_IO, NULL, "cannot encode the public key");
		goto out;
	}
	*public_pem = bio_to_str(b);
	if (*public_pem == NULL)
		rc = nomem(err);
out:
	BIO_free(b);
	EVP_PKEY_free(k);
	return rc;
}

/* b64url(JSON of j), compact.  NULL on out-of-memory. */
static char *
json_b64url(const json_t *j)
{
	char *text = json_dumps(j, JSON_COMPACT);
	char *s;

	if (text == NULL)
		return NULL;
	s = pki_b64url_encode(text, strlen(text));
	free(text);
	return s;
}

or_rc
pki_jwt_sign_rs256(const char *private_pem, const char *kid,
		   const char *claims_json, char **jwt, struct or_err *err)
{
	json_t *claims = NULL, *header = NULL;
	char *h64 = NULL, *c64 = NULL, *s64 = NULL;
	unsigned char *sig = NULL;
	size_t sig_len = 0;
	EVP_PKEY *k = NULL;
	EVP_MD_CTX *md = NULL;
	struct buf b;
	or_rc rc;

	*jwt = NULL;
	buf_init(&b, PKI_JWT_MAX);
	if (private_pem == NULL || claims_json == NULL)
		return or_fail(err, OR_E_INVALID, NULL,
			       private_pem == NULL ? "private_pem" : "claims_json",
			       "missing argument");
	rc = json_object_parse(claims_json, strlen(claims_json), "claims_json",
			       &claims, err);
	if (rc != OR_OK)
		goto out;
	header = json_pack("{s:s, s:s}", "alg", "RS256", "typ", "JWT");
	if (header == NULL ||
	    (kid != NULL && json_object_set_new(header, "kid", json_string(kid)) != 0)) {
		rc = or_fail(err, OR_E_INVALID, NULL, "kid", "kid is not valid UTF-8");
		goto out;
	}
	k = private_from_pem(private_pem);
	if (k == NULL) {
		rc = ossl_fail(err, OR_E_INVALID, "private_pem",
			       "private_pem holds no readable unencrypted private key");
		goto out;
	}
	if (!is_rsa_2048_plus(k)) {
		rc = or_fail(err, OR_E_INVALID, NULL, "private_pem",
			     "RS256 needs an RSA key of at least 2048 bits");
		goto out;
	}
	h64 = json_b64url(header);
	c64 = json_b64url(claims);
	if (h64 == NULL || c64 == NULL) {
		rc = nomem(err);
		goto out;
	}
	rc = buf_printf(&b, "%s.%s", h64, c64);
	if (rc != OR_OK) {
		rc = or_fail(err, rc, NULL, "claims_json", "the JWT would be too large");
		goto out;
	}
	md = EVP_MD_CTX_new();
	if (md == NULL) {
		rc = nomem(err);
		goto out;
	}
	/* RSA keys sign with PKCS#1 v1.5 padding unless told otherwise:
	 * exactly RS256 (RFC 7518 3.3). */
	if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k) != 1 ||
	    EVP_DigestSign(md, NULL, &sig_len, (const unsigned char *)b.data,
			   b.len) != 1) {
		rc = ossl_fail(err, OR_E_IO, NULL, "cannot sign");
		goto out;
	}
	sig = malloc(sig_len);
	if (sig == NULL) {
		rc = nomem(err);
		goto out;
	}
	if (EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)b.data,
			   b.len) != 1) {
		rc = ossl_fail(err, OR_E_IO, NULL, "cannot sign");
		goto out;
	}
	s64 = pki_b64url_encode(sig, sig_len);
	if (s64 == NULL) {
		rc = nomem(err);
		goto out;
	}
	rc = buf_printf(&b, ".%s", s64);
	if (rc != OR_OK) {
		rc = or_fail(err, rc, NULL, "claims_json", "the JWT would be too large");
		goto out;
	}
	*jwt = buf_detach(&b);
	if (*jwt == NULL)
		rc = nomem(err);
out:
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(k);
	json_decref(claims);
	json_decref(header);
	free(h64);
	free(c64);
	free(s64);
	free(sig);
	buf_free(&b);
	return rc;
}

/*
 * Nothing compared here is secret -- the signature, the key and the
 * claims are all public -- so there is no timing to hide; the one secret
 * in RS256, the signing key, is used by OpenSSL with blinding.  What
 * matters is refusing early and completely: the algorithm is fixed by
 * us, not by the token, so "none" and HS256-with-the-public-key are
 * refused before any key is looked at, and the payload is parsed only
 * after the signature has verified.
 */
or_rc
pki_jwt_verify_rs256(const char *jwt, const char *key_pem, char **claims_json,
		     struct or_err *err)
{
	const char *dot1, *dot2;
	unsigned char *hdr = NULL, *pay = NULL, *sig = NULL;
	size_t hdr_len, pay_len, sig_len, n;
	json_t *h = NULL, *c = NULL, *v;
	EVP_PKEY *k = NULL;
	EVP_MD_CTX *md = NULL;
	or_rc rc;

	*claims_json = NULL;
	if (jwt == NULL || key_pem == NULL)
		return or_fail(err, OR_E_INVALID, NULL, jwt == NULL ? "jwt" : "key_pem",
			       "missing argument");
	n = strlen(jwt);
	if (n > PKI_JWT_MAX)
		return or_fail(err, OR_E_TOOLARGE, NULL, "jwt",
			       "the JWT is over %d bytes", PKI_JWT_MAX);
	dot1 = strchr(jwt, '.');
	dot2 = dot1 != NULL ? strchr(dot1 + 1, '.') : NULL;
	if (dot2 == NULL || strchr(dot2 + 1, '.') != NULL)
		return or_fail(err, OR_E_MALFORMED, NULL, "jwt",
			       "a JWT has three parts separated by dots");
	rc = pki_b64url_decode(jwt, (size_t)(dot1 - jwt), &hdr, &hdr_len, err);
	if (rc == OR_OK)
		rc = pki_b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &pay,
				       &pay_len, err);
	if (rc == OR_OK)
		rc = pki_b64url_decode(dot2 + 1, n - (size_t)(dot2 + 1 - jwt), &sig,
				       &sig_len, err);
	if (rc != OR_OK) {
		rc = or_fail(err, OR_E_MALFORMED, NULL, "jwt",
			     "a JWT part is not valid base64url");
		goto out;
	}
	rc = json_object_parse((const char *)hdr, hdr_len, "header", &h, err);
	if (rc != OR_OK)
		goto out;
	v = json_object_get(h, "alg");
	if (!json_is_string(v) || strcmp(json_string_value(v), "RS256") != 0) {
		rc = or_fail(err, OR_E_AUTH, NULL, "jwt",
			     "the JWT's alg is not RS256");
		goto out;
	}
	/* RFC 7515 4.1.11: extensions we do not know of must be refused. */
	if (json_object_get(h, "crit") != NULL) {
		rc = or_fail(err, OR_E_AUTH, NULL, "jwt",
			     "the JWT has a crit header");
		goto out;
	}
	v = json_object_get(h, "typ");
	if (v != NULL && (!json_is_string(v) ||
			  strcmp(json_string_value(v), "JWT") != 0)) {
		rc = or_fail(err, OR_E_AUTH, NULL, "jwt", "the JWT's typ is not JWT");
		goto out;
	}
	k = public_from_any_pem(key_pem);
	if (k == NULL) {
		rc = ossl_fail(err, OR_E_INVALID, "key_pem",
			       "key_pem holds no readable public key, certificate or private key");
		goto out;
	}
	if (!is_rsa_2048_plus(k)) {
		rc = or_fail(err, OR_E_INVALID, NULL, "key_pem",
			     "RS256 needs an RSA key of at least 2048 bits");
		goto out;
	}
	md = EVP_MD_CTX_new();
	if (md == NULL) {
		rc = nomem(err);
		goto out;
	}
	if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k) != 1) {
		rc = ossl_fail(err, OR_E_IO, NULL, "cannot set up the verification");
		goto out;
	}
	if (EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)jwt,
			     (size_t)(dot2 - jwt)) != 1) {
		ERR_clear_error();
		rc = or_fail(err, OR_E_AUTH, NULL, "jwt",
			     "the JWT's signature does not verify");
		goto out;
	}
	rc = json_object_parse((const char *)pay, pay_len, "claims", &c, err);
	if (rc != OR_OK)
		goto out;
	*claims_json = (char *)pay;
	pay = NULL;
out:
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(k);
	json_decref(h);
	json_decref(c);
	free(hdr);
	free(pay);
	free(sig);
	return rc;
}

/* ---- Google service accounts -------------------------------------------- */

/* GCP project and service-account ids: 6-30 of [a-z0-9-], a letter first,
 * no hyphen last. */
static int
gcp_id_ok(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0, i;

	if (n < 6 || n > 30 || !(s[0] >= 'a' && s[0] <= 'z') || s[n - 1] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '-'))
			return 0;
	return 1;
}

or_rc
pki_sa_key_new(const char *project, const char *account, const char *token_uri,
	       char **key_json, struct or_err *err)
{
	EVP_PKEY *k = NULL;
	char *key_pem = NULL, *text = NULL;
	unsigned char r[20];
	char key_id[41], client_id[22], email[128], cert_url[256];
	json_t *j = NULL;
	size_t i;
	or_rc rc;

	*key_json = NULL;
	if (!gcp_id_ok(project))
		return or_fail(err, OR_E_INVALID, NULL, "project",
			       "project must be 6 to 30 of [a-z0-9-], starting with a letter");
	if (!gcp_id_ok(account))
		return or_fail(err, OR_E_INVALID, NULL, "account",
			       "account must be 6 to 30 of [a-z0-9-], starting with a letter");
	if (token_uri == NULL)
		token_uri = PKI_GOOGLE_TOKEN_URI;
	if (!uri_ok(token_uri) || (strncmp(token_uri, "https://", 8) != 0 &&
				   strncmp(token_uri, "http://", 7) != 0))
		return or_fail(err, OR_E_INVALID, NULL, "token_uri",
			       "token_uri must be an http or https URL");
	k = key_new(PKI_KEY_RSA_2048);
	if (k == NULL) {
		rc = ossl_fail(err, OR_E_IO, NULL, "cannot generate an RSA key");
		goto out;
	}
	rc = pem_of_key(k, &key_pem, err);
	if (rc != OR_OK)
		goto out;
	/* private_key_id: 40 hex digits, like Google's.  client_id: 21
	 * decimal digits starting with 1, like Google's. */
	if (RAND_bytes(r, sizeof(r)) != 1) {
		rc = ossl_fail(err, OR_E_IO, NULL, "no random bytes");
		goto out;
	}
	for (i = 0; i < 20; i++)
		snprintf(key_id + 2 * i, 3, "%02x", r[i]);
	if (RAND_bytes(r, sizeof(r)) != 1) {
		rc = ossl_fail(err, OR_E_IO, NULL, "no random bytes");
		goto out;
	}
	client_id[0] = '1';
	for (i = 0; i < 20; i++)
		client_id[i + 1] = (char)('0' + r[i] % 10);
	client_id[21] = '\0';
	snprintf(email, sizeof(email), "%s@%s.iam.gserviceaccount.com", account,
		 project);
	snprintf(cert_url, sizeof(cert_url),
		 "https://www.googleapis.com/robot/v1/metadata/x509/%s%%40%s.iam.gserviceaccount.com",
		 account, project);
	/* Keys in the order gcloud writes them (jansson keeps insertion
	 * order). */
	j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
		      "type", "service_account", "project_id", project,
		      "private_key_id", key_id, "private_key", key_pem,
		      "client_email", email, "client_id", client_id,
		      "auth_uri", "https://accounts.google.com/o/oauth2/auth",
		      "token_uri", token_uri,
		      "auth_provider_x509_cert_url",
		      "https://www.googleapis.com/oauth2/v1/certs",
		      "client_x509_cert_url", cert_url,
		      "universe_domain", "googleapis.com");
	if (j == NULL) {
		rc = nomem(err);
		goto out;
	}
	text = json_dumps(j, JSON_INDENT(2));
	if (text == NULL) {
		rc = nomem(err);
		goto out;
	}
	*key_json = text;
out:
	/* Best effort: jansson's own copy of the PEM is wiped before it is
	 * freed.  (Its encoder's scratch buffers are not ours to wipe.) */
	if (j != NULL) {
		json_t *pk = json_object_get(j, "private_key");
		if (json_is_string(pk))
			OPENSSL_cleanse((char *)json_string_value(pk),
					json_string_length(pk));
	}
	json_decref(j);
	pki_secret_free(key_pem);
	EVP_PKEY_free(k);
	return rc;
}

or_rc
pki_sa_assertion(const char *key_json, const char *scopes, const char *aud,
		 long long now, char **jwt, struct or_err *err)
{
	json_t *key = NULL, *claims = NULL, *v;
	const char *email, *pem, *kid = NULL;
	char *text = NULL;
	or_rc rc;

	*jwt = NULL;
	if (key_json == NULL)
		return or_fail(err, OR_E_INVALID, NULL, "key_json", "no key file given");
	if (scopes == NULL || scopes[0] == '\0')
		return or_fail(err, OR_E_INVALID, NULL, "scopes", "no scopes given");
	rc = json_object_parse(key_json, strlen(key_json), "key_json", &key, err);
	if (rc != OR_OK)
		goto out;
	v = json_object_get(key, "type");
	if (!json_is_string(v) ||
	    strcmp(json_string_value(v), "service_account") != 0) {
		rc = or_fail(err, OR_E_INVALID, NULL, "key_json.type",
			     "the key file is not of type service_account");
		goto out;
	}
	email = json_string_value(json_object_get(key, "client_email"));
	pem = json_string_value(json_object_get(key, "private_key"));
	if (email == NULL || pem == NULL) {
		rc = or_fail(err, OR_E_INVALID, NULL,
			     email == NULL ? "key_json.client_email" :
					     "key_json.private_key",
			     "the key file lacks a required field");
		goto out;
	}
	kid = json_string_value(json_object_get(key, "private_key_id"));
	claims = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", email, "scope",
			   scopes, "aud", aud != NULL ? aud : PKI_GOOGLE_TOKEN_URI,
			   "iat", (json_int_t)now, "exp", (json_int_t)(now + 3600));
	if (claims == NULL) {
		rc = or_fail(err, OR_E_INVALID, NULL, "scopes",
			     "scopes or aud is not valid UTF-8");
		goto out;
	}
	text = json_dumps(claims, JSON_COMPACT);
	if (text == NULL) {
		rc = nomem(err);
		goto out;
	}
	rc = pki_jwt_sign_rs256(pem, kid, text, jwt, err);
	if (rc != OR_OK && err != NULL && strcmp(err->field, "private_pem") == 0)
		snprintf(err->field, sizeof(err->field), "key_json.private_key");
out:
	if (key != NULL) {
		v = json_object_get(key, "private_key");
		if (json_is_string(v))
			OPENSSL_cleanse((char *)json_string_value(v),
					json_string_length(v));
	}
	json_decref(key);
	json_decref(claims);
	free(text);
	return rc;
}
