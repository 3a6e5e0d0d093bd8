package protocols

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
)

// Token is a Discord credential. It never shows itself: fmt, slog and
// encoding/json print "Bot [REDACTED]", and a struct holding a Token prints
// a pointer, not the secret. Only [Token.Authorization] and [Token.Reveal]
// give the secret out, to the code that sends it to Discord.
//
// The zero Token is empty.
type Token struct{ s *secret }

type secret struct{ kind, value string }

// BotToken returns a bot token. A leading "Bot " is stripped, as Discord
// accepts the token with or without it.
func BotToken(s string) Token {
	s = strings.TrimSpace(s)
	if len(s) > 4 && strings.EqualFold(s[:4], "bot ") {
		s = strings.TrimSpace(s[4:])
	}
	if s == "" {
		return Token{}
	}
	return Token{&secret{"Bot", s}}
}

// BearerToken returns an OAuth2 access token.
func BearerToken(s string) Token {
	s = strings.TrimSpace(s)
	if s == "" {
		return Token{}
	}
	return Token{&secret{"Bearer", s}}
}

// IsZero reports whether t is empty.
func (t Token) IsZero() bool { return t.s == nil }

// Kind returns "Bot", "Bearer", or "" for the zero Token.
func (t Token) Kind() string {
	if t.s == nil {
		return ""
	}
	return t.s.kind
}

// Authorization returns the Authorization header value, "Bot <token>".
func (t Token) Authorization() string {
	if t.s == nil {
		return ""
	}
	return t.s.kind + " " + t.s.value
}

// Reveal returns the bare token, as IDENTIFY and RESUME send it.
func (t Token) Reveal() string {
	if t.s == nil {
		return ""
	}
	return t.s.value
}

// Validate checks the token's shape: a bot token is three dot-separated
// base64url parts, the first of which encodes the bot's numeric user ID.
// It returns an error wrapping [ErrInvalidToken] that never contains the
// token.
func (t Token) Validate() error {
	if t.s == nil {
		return fmt.Errorf("%w: token is empty", ErrInvalidToken)
	}
	if strings.ContainsAny(t.s.value, " \t\r\n") {
		return fmt.Errorf("%w: token contains white space", ErrInvalidToken)
	}
	if t.s.kind != "Bot" {
		return nil
	}
	parts := strings.Split(t.s.value, ".")
	if len(parts) != 3 {
		return fmt.Errorf("%w: a bot token has 3 dot-separated parts, got %d", ErrInvalidToken, len(parts))
	}
	for i, p := range parts {
		if p == "" || strings.Trim(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return fmt.Errorf("%w: part %d of the token is not base64url", ErrInvalidToken, i+1)
		}
	}
	id, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[0], "="))
	if err != nil || !isSnowflake(string(id)) {
		return fmt.Errorf("%w: the token's first part does not encode a user ID", ErrInvalidToken)
	}
	return nil
}

// ID returns the bot's user ID encoded in a bot token, or "".
func (t Token) ID() string {
	if t.Validate() != nil || t.s.kind != "Bot" {
		return ""
	}
	id, _ := base64.RawURLEncoding.DecodeString(strings.SplitN(t.s.value, ".", 2)[0])
	return string(id)
}

func (t Token) redacted() string {
	if t.s == nil {
		return ""
	}
	return t.s.kind + " [REDACTED]"
}

// String returns "Bot [REDACTED]".
func (t Token) String() string { return t.redacted() }

// GoString returns "Bot [REDACTED]".
func (t Token) GoString() string { return t.redacted() }

// Format prints "Bot [REDACTED]" for every verb.
func (t Token) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(t.redacted())) }

// LogValue keeps the secret out of slog.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.redacted()) }

// MarshalJSON writes "Bot [REDACTED]": a Token is never serialized.
func (t Token) MarshalJSON() ([]byte, error) { return []byte(`"` + t.redacted() + `"`), nil }
