package jwt

import (
	"strconv"
	"strings"

	"github.com/wasmfleet/wasmfleet/filters/auth/internal/digest"
	"github.com/wasmfleet/wasmfleet/sdk"
	"github.com/wasmfleet/wasmfleet/sdk/jsonv"
)

// Verifier checks JWS signatures against a fixed set of keys. It is
// immutable after NewVerifier and safe for concurrent use.
type Verifier struct {
	byID  map[string]*Key
	byAlg map[Alg][]*Key
}

// NewVerifier indexes keys by kid and by algorithm. Duplicate kids are the
// caller's to refuse (the filter's config validation does).
func NewVerifier(keys []*Key) *Verifier {
	v := &Verifier{byID: make(map[string]*Key), byAlg: make(map[Alg][]*Key)}
	for _, k := range keys {
		if k.id != "" {
			v.byID[k.id] = k
		}
		v.byAlg[k.alg] = append(v.byAlg[k.alg], k)
	}
	return v
}

// Verify checks token's structure, algorithm, key and signature, in that
// order, and only then decodes its claims. It does not check the claims'
// values: call Claims.Validate with the current time.
func (v *Verifier) Verify(token string) (*Claims, error) {
	first := strings.IndexByte(token, '.')
	last := strings.LastIndexByte(token, '.')
	if first < 0 || first == last || strings.IndexByte(token[first+1:last], '.') >= 0 {
		return nil, wrap("token", wrap("want three dot-separated segments", ErrMalformed))
	}
	headerB64, payloadB64, sigB64 := token[:first], token[first+1:last], token[last+1:]
	rawHeader, ok := decodeSegment(headerB64)
	if !ok {
		return nil, wrap("header", wrap("not base64url", ErrMalformed))
	}
	h, err := parseObject("header", rawHeader)
	if err != nil {
		return nil, err
	}
	if h.Field("crit") != nil || h.Field("b64") != nil {
		// No extension is understood, so any critical one must be refused
		// (RFC 7515 section 4.1.11); b64 (RFC 7797) changes what is signed.
		return nil, wrap("header", wrap("crit/b64 extensions are not supported", ErrMalformed))
	}
	algV := h.Field("alg")
	if algV == nil || algV.Kind != jsonv.String {
		return nil, wrap("header", wrap("alg missing or not a string", ErrMalformed))
	}
	alg := Alg(algV.Str)
	switch alg {
	case HS256, RS256, ES256:
	default:
		if sdk.EqualFoldASCII(algV.Str, "none") {
			return nil, ErrAlgNone
		}
		return nil, wrap("alg "+quote(algV.Str), ErrAlgUnsupported)
	}
	kid := h.Field("kid")
	if kid != nil && kid.Kind != jsonv.String {
		return nil, wrap("header", wrap("kid not a string", ErrMalformed))
	}
	key, err := v.keyFor(alg, kid)
	if err != nil {
		return nil, err
	}
	sig, ok := decodeSegment(sigB64)
	if !ok {
		return nil, wrap("signature", wrap("not base64url", ErrMalformed))
	}
	if !key.verify([]byte(token[:last]), sig) {
		return nil, wrap(string(alg), ErrSignature)
	}
	payload, ok := decodeSegment(payloadB64)
	if !ok {
		return nil, wrap("payload", wrap("not base64url", ErrMalformed))
	}
	return parseClaims(payload)
}

// keyFor picks the key: by kid when the token names one (and the key must be
// for alg), otherwise the only key for alg.
func (v *Verifier) keyFor(alg Alg, kid *jsonv.Value) (*Key, error) {
	if kid != nil {
		k, ok := v.byID[kid.Str]
		if !ok {
			return nil, wrap("kid "+quote(kid.Str), ErrUnknownKey)
		}
		if k.alg != alg {
			return nil, wrap("kid "+quote(kid.Str)+" is "+string(k.alg)+", token says "+string(alg), ErrAlgMismatch)
		}
		return k, nil
	}
	candidates := v.byAlg[alg]
	if len(candidates) != 1 {
		return nil, wrap("no kid and "+strconv.Itoa(len(candidates))+" "+string(alg)+" keys", ErrUnknownKey)
	}
	return candidates[0], nil
}

// verify checks sig over the signing input. Each algorithm's signature has a
// fixed length; anything else is refused before any arithmetic.
func (k *Key) verify(signingInput, sig []byte) bool {
	switch k.alg {
	case HS256:
		mac := k.hmac.Sum(signingInput)
		return digest.Equal(mac[:], sig)
	case RS256:
		sum := digest.Sum256(signingInput)
		return k.rsa.VerifySHA256(sum[:], sig)
	case ES256:
		// RFC 7518 section 3.4: R and S as 32-byte big-endian, concatenated;
		// VerifySHA256 refuses any other length.
		sum := digest.Sum256(signingInput)
		return k.ec.VerifySHA256(sum[:], sig)
	}
	return false
}
