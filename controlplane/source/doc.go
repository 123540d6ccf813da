// Package source turns the places modules come from into types.Event values
// on a channel, so the rest of the control plane never looks at a file or a
// registry itself.
//
// Dir watches a directory (filters.d by default) with fsnotify:
//
//	NAME.wasm           the module of filter NAME -> ModuleChanged / ModuleRemoved
//	NAME.wasm.sig       detached signature, attached to NAME's module event
//	NAME.manifest.json  build manifest, attached to NAME's module event
//	NAME.yaml           the filter's settings, raw -> SettingsChanged
//
// NAME must satisfy config.ValidFilterName; anything else in the directory
// (editor swap and backup files, "4913", "*.tmp", ".#NAME.wasm") is ignored.
// A filter's settings file is reported before its module, and a module waits
// while the settings file beside it is still being written, so a module is
// never admitted with settings other than the file's.
//
// The hard part is never publishing half a file. Editors and copy tools
// write in pieces, rename temp files into place and fire bursts of events.
// So each filter's module (with its .sig and manifest) and its settings are
// debounced separately; once quiet, the file is read and its size, mtime and
// identity are compared before and after the read; if anything moved the
// read is thrown away and the quiet period starts again. On Linux a file's
// writer closing it, or a rename putting it in place, ends the wait sooner
// (a few milliseconds, for the files written with it): that is what a
// writer does when it is done, so most changes are read at once instead of
// a quiet period later. A file with a writer that still has it open gets
// no such report and waits the whole quiet period, as everywhere else. The digest is of
// exactly the bytes read, and those bytes travel in the event: nobody reads
// the file again. A module must also look whole (wasm magic and sections
// that end exactly at the end of the file): a copy that pauses longer than
// the debounce is waited for, up to a bound, after which the bytes are
// reported anyway and admission refuses them with a proper reason.
//
// Problems with a file (not a regular file, over MaxModuleBytes, a symlink
// loop, unreadable, a bad manifest) become SourceFailed events naming the
// file; the watcher carries on. So does a symlink that leads outside the
// directory (ErrOutsideDir), which is not even opened unless
// DirConfig.FollowOutsideSymlinks says so: whoever can add a link to the
// directory must not be able to have the control plane read, and show in
// its status, any file it can read. Links that stay inside are followed. The directory may be removed and recreated,
// or swapped as a symlink (Kubernetes ConfigMap volumes swap a "..data"
// symlink): the parent is watched too, and either case triggers a rescan
// that reports what appeared and what vanished.
//
// The OCI registry source lives beside this one (source/oci).
package source
