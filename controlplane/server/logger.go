package server

import (
	gcplog "github.com/envoyproxy/go-control-plane/pkg/log"
	"go.uber.org/zap"
)

// Logger adapts zap to go-control-plane's logger, for the server and for the
// snapshot cache (cache.NewSnapshotCache takes one too). go-control-plane
// logs every watch it opens at info level, which for a fleet is per-request
// noise, so its info goes to debug.
func Logger(l *zap.Logger) gcplog.Logger {
	return zapLogger{l.Named("go-control-plane").WithOptions(zap.AddCallerSkip(1)).Sugar()}
}

type zapLogger struct{ s *zap.SugaredLogger }

var _ gcplog.Logger = zapLogger{}

func (z zapLogger) Debugf(format string, args ...any) { z.s.Debugf(format, args...) }
func (z zapLogger) Infof(format string, args ...any)  { z.s.Debugf(format, args...) }
func (z zapLogger) Warnf(format string, args ...any)  { z.s.Warnf(format, args...) }
func (z zapLogger) Errorf(format string, args ...any) { z.s.Errorf(format, args...) }
