package interop

import (
	"fmt"
	"os"
	"testing"

	"github.com/bwmarrin/discordgo"
)

// TestMain installs the discordgo log sink before any test runs (the
// logger is a package variable of discordgo). No goroutine-leak check
// runs: both peers leave goroutines behind by design (see README.md).
func TestMain(m *testing.M) {
	discordgo.Logger = dgLog.log
	code := m.Run()
	if os.Getenv("INTEROP_DUMP") != "" {
		dgLog.mu.Lock()
		for _, l := range dgLog.lines {
			fmt.Println("discordgo:", l)
		}
		dgLog.mu.Unlock()
	}
	os.Exit(code)
}
