package protocols_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/cordkit/cordkit/protocols"
)

func TestHTTPErrorFieldErrors(t *testing.T) {
	route, _ := protocols.NewRoute("POST", "/webhooks/{webhook_id}/{webhook_token}", "1", "secret-token")
	e := &protocols.HTTPError{Route: route, Status: 400, Code: 50035, Message: "Invalid Form Body",
		Errors: json.RawMessage(`{"embeds":{"0":{"title":{"_errors":[{"code":"BASE_TYPE_MAX_LENGTH","message":"Must be 256 or fewer in length."}]}}},
			"content":{"_errors":[{"code":"BASE_TYPE_REQUIRED","message":"This field is required"}]},
			"_errors":[{"code":"X","message":"whole"}]}`)}
	assert.Equal(t, []protocols.FieldError{
		{Path: "", Code: "X", Message: "whole"},
		{Path: "content", Code: "BASE_TYPE_REQUIRED", Message: "This field is required"},
		{Path: "embeds.0.title", Code: "BASE_TYPE_MAX_LENGTH", Message: "Must be 256 or fewer in length."},
	}, e.FieldErrors())
	assert.Contains(t, e.Error(), "50035 Invalid Form Body")
	assert.Contains(t, e.Error(), "embeds.0.title: Must be 256")
	assert.NotContains(t, e.Error(), "secret-token", "tokens in paths are credentials")
	assert.False(t, errors.Is(e, protocols.ErrInvalidToken))
	assert.True(t, errors.Is(&protocols.HTTPError{Status: 401}, protocols.ErrInvalidToken))
	assert.Nil(t, (&protocols.HTTPError{Errors: json.RawMessage(`[1,2]`)}).FieldErrors())
}

func TestRateLimitErrorIs(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", &protocols.RateLimitError{Scope: protocols.ScopeCloudflare})
	assert.ErrorIs(t, err, protocols.ErrRateLimited)
	var rl *protocols.RateLimitError
	assert.ErrorAs(t, err, &rl)
}

func TestCloseErrorMatchesFatalSentinels(t *testing.T) {
	fatal := map[protocols.CloseCode]error{
		4004: protocols.ErrInvalidToken, 4010: protocols.ErrInvalidShard, 4011: protocols.ErrShardingRequired,
		4012: protocols.ErrInvalidAPIVersion, 4013: protocols.ErrInvalidIntents, 4014: protocols.ErrDisallowedIntents,
	}
	for code := protocols.CloseCode(4000); code <= 4014; code++ {
		err := fmt.Errorf("shard 0: %w", &protocols.CloseError{Code: code})
		assert.Equal(t, code, protocols.CloseStatus(err))
		if s, ok := fatal[code]; ok {
			assert.ErrorIs(t, err, s, "code %d", code)
			assert.Equal(t, protocols.ActionStop, code.Action(), "code %d", code)
		} else {
			assert.NotEqual(t, protocols.ActionStop, code.Action(), "code %d", code)
		}
	}
	for _, c := range []protocols.CloseCode{4003, 4007, 4009} {
		assert.Equal(t, protocols.ActionIdentify, c.Action(), "code %d", c)
	}
	for _, c := range []protocols.CloseCode{1000, 1001, 1006, 4000, 4008} {
		assert.Equal(t, protocols.ActionResume, c.Action(), "code %d", c)
	}
	assert.Equal(t, protocols.CloseCode(-1), protocols.CloseStatus(errors.New("x")))
}
