// Package controller is the reconcile loop at the centre of the control
// plane. It turns source events into admitted versions, rollout state into a
// per-node plan, and the plan into xDS snapshots, and it rolls a candidate
// back when nodes NACK it.
//
// One goroutine owns all state, so the order of events is the order of
// decisions: a module admitted, then a node connecting, then a NACK, are
// handled exactly in that order, and nothing needs a lock except the status
// view that the admin API reads.
//
// Admission's trial runs are the exception to doing the work in the loop:
// one takes up to limits.trial_timeout, and ACKs, NACKs, connects and
// commands must not wait behind it. The loop hands each filter's trial to a
// bounded pool of workers and comes back to it as an event; a trial that
// no longer matches what the filter wants (a newer module, new settings, a
// reload) is cancelled and its outcome dropped, so a module is only ever
// admitted with the settings it was tried with (admitting.go).
package controller
