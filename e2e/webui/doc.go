// Package webui tests the admin API's status page (controlplane/admin, GET
// /) in a real headless Chromium against a real control plane with
// stand-in nodes: the page follows a rollout as it happens, runs rollout
// commands with the admin token, shows NACK reasons and refused config
// edits, and puts node ids and errors on the page as text only. It holds
// tests only; it needs the `chromium` binary (Debian package chromium) and
// skips without it.
package webui
