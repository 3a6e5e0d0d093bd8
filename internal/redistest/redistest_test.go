package redistest_test

import (
	"testing"

	"github.com/cordkit/cordkit/internal/redistest"
)

func TestStartStopRestart(t *testing.T) {
	s := redistest.Start(t)
	if err := redistest.Ping(s.Addr); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if err := redistest.Ping(s.Addr); err == nil {
		t.Fatal("PING answered after Stop")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := redistest.Ping(s.Addr); err != nil {
		t.Fatal(err)
	}
}
