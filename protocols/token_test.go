package protocols_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/cordkit/cordkit/protocols"
)

const secret = "MTExMTExMTExMTExMTExMTEx.R3ZhYg.super-secret-part"

func TestTokenNeverPrints(t *testing.T) {
	tok := protocols.BotToken("Bot " + secret)
	assert.Equal(t, secret, tok.Reveal())
	assert.Equal(t, "Bot "+secret, tok.Authorization())
	type holder struct {
		Public  protocols.Token
		private protocols.Token
		ptr     *protocols.Token
	}
	h := holder{tok, tok, &tok}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "token", tok, "holder", h)
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "token", tok, "holder", h)
	js, err := json.Marshal(h)
	assert.NoError(t, err)
	out := fmt.Sprintf("%v %+v %#v %s %q %x %v %+v %#v", tok, tok, tok, tok, tok, tok, h, h, h) + logs.String() + string(js)
	assert.NotContains(t, out, "super-secret-part")
	assert.Contains(t, out, "Bot [REDACTED]")
}

func TestTokenValidate(t *testing.T) {
	assert.NoError(t, protocols.BotToken(secret).Validate())
	assert.Equal(t, "111111111111111111", protocols.BotToken(secret).ID())
	assert.NoError(t, protocols.BearerToken("anything-goes").Validate())
	for _, bad := range []string{"", "a.b", "a.b.c.d", "MTEx..c", "bm90LWFuLWlk.b.c", "MTEx.b!.c"} {
		err := protocols.BotToken(bad).Validate()
		assert.ErrorIs(t, err, protocols.ErrInvalidToken, "%q", bad)
		if err != nil && bad != "" {
			assert.False(t, strings.Contains(err.Error(), bad), "the error repeats the token: %v", err)
		}
	}
	assert.True(t, protocols.BotToken("  ").IsZero())
	assert.Equal(t, "", protocols.Token{}.Authorization())
}
