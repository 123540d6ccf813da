// Package controller is the reconcile loop at the centre of the control
// plane. It turns source events into admitted versions, rollout state into a
// per-node plan, and the plan into xDS snapshots, and it rolls a candidate
// back when nodes NACK it.
//
// One goroutine owns all state, so the order of events is the order of
// decisions: a module admitted, then a node connecting, then a NACK, are
// handled exactly in that order, and nothing needs a lock except the status
// view that the admin API reads.
package controller
