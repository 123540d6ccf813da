// Package quickstart runs README.md's quick start (docs/quickstart.sh) as a
// newcomer would: in a fresh copy of the repository, with the README's own
// commands, on free ports. It is how the README keeps reaching a 200.
package quickstart
