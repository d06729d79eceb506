/*
 * pki.h - keys, X.509 certificates, SSH keys and RS256 JWTs (OpenSSL 3).
 *
 * Used by the product's plugins (Istio's plugged-in `cacerts`, VM workload
 * certificates with SPIFFE identities, VM login keys, Google service-account
 * assertions) and by the simulated cloud (cluster CAs, API-server
 * certificates, checking JWTs at its token endpoint).
 *
 * What this subsystem must never do: put private key material into an
 * or_err, a log line or anything else that is not the caller's own output
 * parameter.  Error messages name the input ("key_pem"), never its value.
 *
 * Ownership: every char ** output is malloc'd and the caller's; free public
 * text with free() and text that holds a private key with pki_secret_free()
 * (which wipes it first).  Outputs are set only on OR_OK; on failure they are
 * left NULL.  Every _free(NULL) is a no-op.  Inputs are borrowed.
 *
 * Key types, and why: certificates get EC P-256 keys by default.  Generating
 * one takes well under a millisecond (RSA 2048 takes tens to hundreds), which
 * matters when the simulated cloud makes a CA for every cluster and the tests
 * make dozens; Go's crypto/x509 (istiod, kubectl), Envoy, curl and
 * libmicrohttpd's GnuTLS all accept it.  RSA 2048 is available per
 * certificate (pki_issue_opts.key) for a peer that wants RSA.  Google
 * service-account keys are RSA 2048 because RS256 is what Google's token
 * endpoint takes; SSH keys are ed25519 because libssh2 1.10 cannot log in
 * with RSA keys to a default OpenSSH 9 server (no rsa-sha2 signatures).
 */
#ifndef PKI_H
#define PKI_H

#include <stddef.h>

#include "or.h"

/* ---- secrets ---------------------------------------------------------- */

/* Wipe the NUL-terminated string s, then free it.  NULL is a no-op. */
void pki_secret_free(char *s);

/* ---- base64 ------------------------------------------------------------ */

/* Standard base64 (RFC 4648 section 4) with '=' padding, on one line.
 * Returns a malloc'd NUL-terminated string, NULL on out-of-memory. */
char *pki_b64_encode(const void *data, size_t len);

/* base64url (RFC 4648 section 5) without padding, as JWTs use it. */
char *pki_b64url_encode(const void *data, size_t len);

/* Strict decoders: no whitespace, and non-canonical input (bits left over
 * in the last character, a wrong length) is refused with OR_E_MALFORMED.
 * pki_b64_decode requires the padding; pki_b64url_decode refuses it.
 * *out is malloc'd (NUL-terminated for convenience, the NUL not counted in
 * *out_len) and the caller's. */
or_rc pki_b64_decode(const char *s, size_t len, unsigned char **out,
		     size_t *out_len, struct or_err *err);
or_rc pki_b64url_decode(const char *s, size_t len, unsigned char **out,
			size_t *out_len, struct or_err *err);

/* ---- certificates ------------------------------------------------------ */

/* A certificate with its private key (or, from pki_cert_load with no key,
 * a certificate alone, usable as a trust anchor but not as an issuer). */
struct pki_cert;

void pki_cert_free(struct pki_cert *c);

/* The certificate as PEM and, when key_pem is not NULL, its private key as
 * unencrypted PKCS#8 PEM ("BEGIN PRIVATE KEY", which istiod, Go, GnuTLS and
 * OpenSSL all read).  Free *key_pem with pki_secret_free.  OR_E_INVALID if
 * a key is asked for and the pki_cert has none. */
or_rc pki_cert_pem(const struct pki_cert *c, char **cert_pem, char **key_pem,
		   struct or_err *err);

/* Parse the first certificate of cert_pem and, if key_pem is not NULL, the
 * private key (PKCS#8, PKCS#1 RSA or SEC1 EC), which must match the
 * certificate.  OR_E_INVALID naming "cert_pem" or "key_pem" otherwise. */
or_rc pki_cert_load(const char *cert_pem, const char *key_pem,
		    struct pki_cert **out, struct or_err *err);

/* A self-signed root CA with an EC P-256 key: subject O=org (omitted when
 * org is NULL or ""), CN=cn; basicConstraints critical CA:TRUE (no path
 * length limit); keyUsage critical digitalSignature, keyCertSign, cRLSign;
 * subjectKeyIdentifier; a random positive serial of 16 bytes; valid from
 * five minutes ago (clock skew between us and a verifier) for `days` days,
 * 1..36500. */
or_rc pki_ca_new(const char *org, const char *cn, int days,
		 struct pki_cert **out, struct or_err *err);

enum pki_key {
	PKI_KEY_EC_P256 = 0,	/* the default, see the file comment */
	PKI_KEY_RSA_2048
};

/* What pki_issue puts in a certificate.  Zero-initialise and set what you
 * need; the arrays are borrowed and may be NULL when their count is 0. */
struct pki_issue_opts {
	const char *cn;		/* required, at most 64 bytes */
	const char *org;	/* optional O= */
	const char *locality;	/* optional L= (Istio's Makefiles use it) */
	int days;		/* 1..36500; cut to the issuer's notAfter */
	enum pki_key key;
	int is_ca;		/* CA:TRUE, keyCertSign+cRLSign+digitalSignature */
	int pathlen;		/* with is_ca: >= 0 limits the path, -1 none */
	const char *const *dns; /* DNS SANs: letters, digits, '-', '.', '*' */
	size_t n_dns;
	const char *const *ips; /* IP SANs: IPv4 or IPv6 text */
	size_t n_ips;
	const char *const *uris; /* URI SANs, e.g. spiffe://td/ns/x/sa/y */
	size_t n_uris;
	int server_auth;	/* extendedKeyUsage serverAuth */
	int client_auth;	/* extendedKeyUsage clientAuth */
};

/* A certificate for a new key, signed by ca with SHA-256.  A leaf gets
 * basicConstraints critical CA:FALSE and keyUsage critical digitalSignature
 * (+ keyEncipherment for RSA keys).  Both get subjectKeyIdentifier,
 * authorityKeyIdentifier (the CA's key id), the SANs (non-critical: the
 * subject is never empty) and a random serial.
 * OR_E_INVALID naming the bad field of o, or "ca" when ca has no key or is
 * not a CA. */
or_rc pki_issue(const struct pki_cert *ca, const struct pki_issue_opts *o,
		struct pki_cert **out, struct or_err *err);

/* Verify cert_pem (its first certificate) up to a root in root_pem, using
 * the certificates in chain_pem (may be NULL) as untrusted intermediates,
 * at the current time, for any purpose -- what `openssl verify -CAfile root
 * -untrusted chain cert` and istiod's check of `cacerts` do.  OR_E_INVALID
 * with OpenSSL's reason (e.g. "unable to get local issuer certificate"). */
or_rc pki_chain_verify(const char *root_pem, const char *chain_pem,
		       const char *cert_pem, struct or_err *err);

/* ---- Istio ------------------------------------------------------------- */

/* The files of Istio's plugged-in CA (secret `cacerts` in istio-system).
 * All malloc'd; free the whole struct with pki_istio_clear. */
struct pki_istio {
	char *root_cert;	/* root-cert.pem */
	char *ca_cert;		/* ca-cert.pem: the intermediate istiod signs with */
	char *ca_key;		/* ca-key.pem: its key (PKCS#8), secret */
	char *cert_chain;	/* cert-chain.pem: ca-cert then root-cert */
	char *root_key;		/* the root's key when made here, else NULL.
				 * Secret; not part of `cacerts`: keep it to make
				 * the next cluster's intermediate. */
};

/* Free the members and zero the struct. */
void pki_istio_clear(struct pki_istio *p);

/* Make Istio's plug-in CA files the way Istio's tools/certs Makefiles do
 * (1.8+, see notes istio-vm.md 5.2), with EC P-256 keys.  root: sign with
 * this root (several clusters sharing one root trust each other), or NULL
 * to make a new root "O=org, CN=Root CA" valid for `days`.  The intermediate
 * is "O=org, CN=Intermediate CA, L=cluster" (L omitted when cluster is NULL
 * or ""), CA:TRUE pathlen:0, keyUsage critical digitalSignature, keyCertSign,
 * cRLSign, SAN DNS:istiod.istio-system.svc, valid for `days`. */
or_rc pki_istio_cacerts(const struct pki_cert *root, const char *org,
			const char *cluster, int days, struct pki_istio *out,
			struct or_err *err);

/* A workload's files, for a VM joining the mesh.  Free with
 * pki_workload_clear. */
struct pki_workload {
	char *key;		/* key.pem, PKCS#8, secret */
	char *cert;		/* the leaf alone */
	char *cert_chain;	/* cert-chain.pem: leaf, ca's cert, root (if
				 * root_pem was given and differs from ca) */
	char *root_cert;	/* root-cert.pem */
};

void pki_workload_clear(struct pki_workload *w);

/* A leaf for the SPIFFE identity spiffe://TRUST_DOMAIN/ns/NS/sa/SA signed
 * by ca (normally the intermediate of pki_istio_cacerts): the identity is
 * a URI SAN -- not DNS, the 2020 tutorial's mistake -- with serverAuth and
 * clientAuth, subject "CN=SA, L=NS", EC P-256.  root_pem: the mesh root,
 * or NULL when ca is the root itself.  trust_domain: lowercase letters,
 * digits, '.', '-', '_'; ns and sa: letters, digits, '.', '-', '_'.
 * days: 1..36500 (istiod caps workload certificates at 90 days; a VM's
 * static certificate is the caller's policy). */
or_rc pki_workload_cert(const struct pki_cert *ca, const char *root_pem,
			const char *trust_domain, const char *ns,
			const char *sa, int days, struct pki_workload *out,
			struct or_err *err);

/* ---- SSH --------------------------------------------------------------- */

/* A new ed25519 key pair.  *private_key is in the "OPENSSH PRIVATE KEY"
 * container, unencrypted: OpenSSH 9.2 refuses ed25519 keys in PKCS#8 PEM
 * ("invalid format"), while libssh2 1.10 logs in with either (checked
 * against sshd 9.2, with and without the public key given to
 * libssh2_userauth_publickey_frommemory).
 * *authorized_key is "ssh-ed25519 AAAA... comment" without
 * a newline (no comment part when comment is NULL or "").  comment: at
 * most 255 printable ASCII bytes.  Free *private_key with pki_secret_free. */
or_rc pki_ssh_keypair(const char *comment, char **private_key,
		      char **authorized_key, struct or_err *err);

/* The fingerprint of a public key line "TYPE BASE64 [comment]" as
 * `ssh-keygen -l` prints it: "SHA256:" and the unpadded base64 of the
 * SHA-256 of the key blob.  Any key type; the blob must name TYPE. */
or_rc pki_ssh_fingerprint(const char *authorized_key, char **fingerprint,
			  struct or_err *err);

/* ---- keys, JWTs and Google service accounts ------------------------------ */

/* The SubjectPublicKeyInfo PEM ("BEGIN PUBLIC KEY") of a private key PEM
 * of any type OpenSSL reads. */
or_rc pki_public_pem_from_private(const char *private_pem, char **public_pem,
				  struct or_err *err);

/* Sign claims_json (a JSON object, re-encoded compactly) as a JWT with
 * header {"alg":"RS256","typ":"JWT"[,"kid":kid]}: RSASSA-PKCS1-v1_5 with
 * SHA-256 over b64url(header) "." b64url(claims).  The key must be RSA of
 * at least 2048 bits.  kid may be NULL. */
or_rc pki_jwt_sign_rs256(const char *private_pem, const char *kid,
			 const char *claims_json, char **jwt,
			 struct or_err *err);

/* Check an RS256 JWT's signature with key_pem (a public key, a certificate
 * or a private key; RSA >= 2048 bits).  Refused with OR_E_AUTH: a header
 * whose alg is not "RS256" (so "none" and HS256 with the public key as a
 * secret), a "crit" header, a typ other than "JWT", a bad signature.
 * OR_E_MALFORMED: not three base64url parts, header or claims not a JSON
 * object.  On success *claims_json is the payload's JSON text.  Time
 * claims (exp, iat, nbf) and aud are the caller's to check: this function
 * only knows the key. */
or_rc pki_jwt_verify_rs256(const char *jwt, const char *key_pem,
			   char **claims_json, struct or_err *err);

/* Google's token endpoint, the default token_uri and assertion audience. */
#define PKI_GOOGLE_TOKEN_URI "https://oauth2.googleapis.com/token"

/* A new Google service-account key file (JSON, as `gcloud iam
 * service-accounts keys create` writes it): type service_account,
 * project_id, private_key_id (40 hex digits), private_key (RSA 2048,
 * PKCS#8 PEM), client_email ACCOUNT@PROJECT.iam.gserviceaccount.com,
 * client_id (21 digits), auth_uri, token_uri (PKI_GOOGLE_TOKEN_URI when
 * NULL), auth_provider_x509_cert_url, client_x509_cert_url,
 * universe_domain.  project: 6-30 of [a-z0-9-], starting with a letter;
 * account: the same rules.  *key_json holds the key: pki_secret_free. */
or_rc pki_sa_key_new(const char *project, const char *account,
		     const char *token_uri, char **key_json,
		     struct or_err *err);

/* The JWT-bearer assertion for a key file, as google-auth builds it:
 * kid = private_key_id, claims iss = client_email, scope = scopes
 * (space-separated), aud = aud or PKI_GOOGLE_TOKEN_URI when NULL
 * (google-auth always uses Google's URL, whatever token_uri says),
 * iat = now, exp = now + 3600. */
or_rc pki_sa_assertion(const char *key_json, const char *scopes,
		       const char *aud, long long now, char **jwt,
		       struct or_err *err);

#endif
