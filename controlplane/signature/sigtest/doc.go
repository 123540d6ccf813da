// Package sigtest gives tests fresh signing keys in cosign's format: a P-256
// key pair whose public half is a PEM file, as `cosign generate-key-pair`
// writes cosign.pub, and a signature.Signer for the private half.
package sigtest
