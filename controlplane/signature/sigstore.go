package signature

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/ociartifact"
)

// The Sigstore bundle, as cosign writes it with --new-bundle-format (to a
// registry, attached as an OCI 1.1 referrer; or to a file with sign-blob
// --bundle): protobuf-specs' dev.sigstore.bundle.v1.Bundle in its JSON
// form. Only what a public-key check needs is read; transparency-log
// entries and certificates are not checked (see the package doc).
// Media types and the bundle's layout in a registry are in ociartifact.
const (
	// InTotoPayloadType is the DSSE payload type of an in-toto statement.
	InTotoPayloadType   = "application/vnd.in-toto+json"
	inTotoStatementType = "https://in-toto.io/Statement/v1"
)

// sigstoreBundle is the part of a Sigstore bundle read here: a DSSE
// envelope (artifacts in a registry) or a message signature (blobs).
type sigstoreBundle struct {
	MediaType            string                `json:"mediaType"`
	VerificationMaterial *verificationMaterial `json:"verificationMaterial,omitempty"`
	DSSEEnvelope         *dsseEnvelope         `json:"dsseEnvelope,omitempty"`
	MessageSignature     *messageSignature     `json:"messageSignature,omitempty"`
}

// verificationMaterial says which key signed (a hint, not the key: the
// trusted keys are configured) and carries Rekor entries, not checked here.
type verificationMaterial struct {
	PublicKey   *publicKeyHint    `json:"publicKey,omitempty"`
	TlogEntries []json.RawMessage `json:"tlogEntries"`
}

type publicKeyHint struct {
	Hint string `json:"hint"`
}

type dsseEnvelope struct {
	Payload     string          `json:"payload"`
	PayloadType string          `json:"payloadType"`
	Signatures  []dsseSignature `json:"signatures"`
}

type dsseSignature struct {
	Sig   string `json:"sig"`
	KeyID string `json:"keyid"`
}

type messageSignature struct {
	MessageDigest struct {
		Algorithm string `json:"algorithm"`
		Digest    string `json:"digest"`
	} `json:"messageDigest"`
	Signature string `json:"signature"`
}

// inTotoStatement is the DSSE payload: the subjects it signs.
type inTotoStatement struct {
	Type          string          `json:"_type"`
	Subject       []inTotoSubject `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

type inTotoSubject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// legacyBlobBundle is what `cosign sign-blob --bundle` writes without
// --new-bundle-format (cosign 2's default): the base64 signature, and a
// certificate and Rekor entry that a public-key check does not need.
type legacyBlobBundle struct {
	Base64Signature string          `json:"base64Signature"`
	Cert            string          `json:"cert,omitempty"`
	RekorBundle     json.RawMessage `json:"rekorBundle,omitempty"`
}

// pae is DSSE's pre-authentication encoding, what a DSSE signature signs.
func pae(payloadType string, payload []byte) []byte {
	var b bytes.Buffer
	b.WriteString("DSSEv1 " + strconv.Itoa(len(payloadType)) + " " + payloadType + " " + strconv.Itoa(len(payload)) + " ")
	b.Write(payload)
	return b.Bytes()
}

// verifyDSSE checks a Sigstore bundle of an artifact: a DSSE signature by
// a trusted key over an in-toto statement whose subject is digest
// ("sha256:HEX"). The error says why not, without the sentinel.
func (v *verifier) verifyDSSE(raw []byte, digest string) error {
	var b sigstoreBundle
	if err := json.Unmarshal(raw, &b); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if !strings.HasPrefix(b.MediaType, ociartifact.SigstoreBundleMediaTypePrefix) {
		return fmt.Errorf("media type %q is not a Sigstore bundle", b.MediaType)
	}
	env := b.DSSEEnvelope
	if env == nil {
		return fmt.Errorf("holds no DSSE envelope (a blob signature, not an artifact's)")
	}
	if env.PayloadType != InTotoPayloadType {
		return fmt.Errorf("payload type %q, want %s", env.PayloadType, InTotoPayloadType)
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return fmt.Errorf("payload is not base64: %w", err)
	}
	signed := pae(env.PayloadType, payload)
	verified := false
	for _, s := range env.Signatures {
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err == nil && v.anyKey(sig, signed) {
			verified = true
			break
		}
	}
	if !verified {
		return fmt.Errorf("does not verify with %s", v.keyNames())
	}
	var st inTotoStatement
	if err := json.Unmarshal(payload, &st); err != nil {
		return fmt.Errorf("payload is not an in-toto statement: %w", err)
	}
	if st.Type != inTotoStatementType {
		return fmt.Errorf("statement type %q, want %s", st.Type, inTotoStatementType)
	}
	// An attestation (SBOM, provenance) by the same key says something
	// about the artifact; only cosign's signing predicate says "signed".
	if st.PredicateType != ociartifact.CosignSignPredicate {
		return fmt.Errorf("is an attestation (predicate %s), not a signature (%s)", st.PredicateType, ociartifact.CosignSignPredicate)
	}
	want := strings.TrimPrefix(digest, "sha256:")
	var named []string
	for _, s := range st.Subject {
		if s.Digest["sha256"] == want {
			return nil
		}
		named = append(named, "sha256:"+s.Digest["sha256"])
	}
	return fmt.Errorf("signs [%s], not the artifact %s", strings.Join(named, ", "), digest)
}

// verifyBlobBundle checks a `cosign sign-blob --bundle` file: the Sigstore
// bundle's message signature, or the older bundle's base64Signature, by a
// trusted key over module.
func (v *verifier) verifyBlobBundle(raw, module []byte) error {
	var probe struct {
		MediaType       string `json:"mediaType"`
		Base64Signature string `json:"base64Signature"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return fmt.Errorf("%w: signature file is not JSON: %w", ErrBadSignature, err)
	}
	var sig string
	switch {
	case strings.HasPrefix(probe.MediaType, ociartifact.SigstoreBundleMediaTypePrefix):
		var b sigstoreBundle
		if err := json.Unmarshal(raw, &b); err != nil {
			return fmt.Errorf("%w: Sigstore bundle: %w", ErrBadSignature, err)
		}
		ms := b.MessageSignature
		if ms == nil {
			return fmt.Errorf("%w: the Sigstore bundle holds no message signature (sign-blob writes one; this is an attestation or an artifact's signature)", ErrBadSignature)
		}
		if d, err := base64.StdEncoding.DecodeString(ms.MessageDigest.Digest); err != nil || ms.MessageDigest.Algorithm != "SHA2_256" ||
			hex.EncodeToString(d) != string(types.DigestOf(module)) {
			return fmt.Errorf("%w: the Sigstore bundle signs %s %s, not this module (sha256:%s)", ErrBadSignature,
				ms.MessageDigest.Algorithm, hexOf(ms.MessageDigest.Digest), types.DigestOf(module))
		}
		sig = ms.Signature
	case probe.Base64Signature != "":
		sig = probe.Base64Signature
	default:
		return fmt.Errorf("%w: signature file is JSON but neither a Sigstore bundle (mediaType %s...) nor a cosign sign-blob bundle (base64Signature)", ErrBadSignature, ociartifact.SigstoreBundleMediaTypePrefix)
	}
	return v.verifyBlob([]byte(sig), module)
}

// hexOf shows a base64 digest as hex in messages; the input as it is when
// it is not base64.
func hexOf(b64 string) string {
	d, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return b64
	}
	return hex.EncodeToString(d)
}
