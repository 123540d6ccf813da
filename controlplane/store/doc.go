// Package store keeps what the control plane must not forget across a
// restart: module bytes, addressed by their sha256, and per filter the
// ordered history of admitted versions and of operator actions, and the
// rollout state. A restarted control plane reads the same versions and state
// back, builds the same resources with the same version strings, and so
// pushes nothing new.
//
// Layout under the directory given to Open:
//
//	modules/sha256/<hex>   module bytes, immutable, written temp -> Sync -> Rename
//	state.db               bbolt: bucket "history" (one sub-bucket per filter,
//	                       keys are big-endian sequence numbers, values JSON
//	                       types.Version), bucket "actions" (the same per
//	                       filter, values JSON Action) and bucket "state"
//	                       (filter -> JSON types.FilterState)
//
// Why bbolt for metadata rather than one JSON file per filter: AddVersion is
// a read-modify-write (compare with the newest entry, then append) and
// bbolt gives it a serialisable, fsync'd transaction without a lock of our
// own or a rewrite of the whole history per append. It also takes an
// exclusive file lock, so two control planes pointed at one data directory
// fail at Open instead of overwriting each other. Module bytes stay plain
// files so the module server can hand them to http.ServeContent (ranges,
// conditional requests) without copying them out of a database.
//
// Module bytes are checked against their digest when read back: a corrupted
// file is an error naming its path (ErrCorrupt), never served as if good.
//
// Modules are deleted only by Prune, which keeps each filter's newest
// versions and the ones its rollout state names: a registry tag polled every
// 30 s must not grow the directory without bound, while the history, which
// is small, keeps every record.
package store
