package fast

import (
	"errors"
	"fmt"
	"math/bits"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/cordkit/cordkit/protocols"
)

// maxDepth is encoding/json's nesting limit, which the scanner shares so
// that both accept the same payloads.
const maxDepth = 10000

// errTrailing and friends are the scanner's syntax errors; DecodeEnvelope
// wraps them with the offset.
var (
	errEOF      = errors.New("unexpected end of JSON input")
	errSyntax   = errors.New("invalid character")
	errDepth    = errors.New("exceeded max depth")
	errTrailing = errors.New("invalid character after top-level value")
)

// typeError is a well-formed value of the wrong type for op, s or t.
type typeError struct {
	field string
	value string
}

func (e *typeError) Error() string {
	return fmt.Sprintf("cannot decode %s into the gateway payload's %q", e.value, e.field)
}

// syntaxError is a malformed payload: the cause and its byte offset.
type syntaxError struct {
	err    error
	offset int
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%v at offset %d", e.err, e.offset) }
func (e *syntaxError) Unwrap() error { return e.err }

// DecodeEnvelope decodes a gateway payload {op, d, s, t} in one pass,
// validating all of it as encoding/json does. env.D is the raw JSON of d as
// a sub-slice of data (capacity clipped), or nil when d is absent, so data
// must stay unchanged while env is used; a null or absent s or t leaves 0
// or "". It allocates nothing for d, and nothing for t when t is a common
// event name.
//
// It accepts and refuses what encoding/json does for the reference
// envelope: field names match case-insensitively, the last of duplicate
// fields wins, a null op keeps the op before it, and a top-level null is an
// empty envelope. On error env is unchanged.
func (Codec) DecodeEnvelope(data []byte, env *protocols.Envelope) error {
	e, err := scanEnvelope(data)
	if err != nil {
		return fmt.Errorf("fast: decode gateway payload: %w", err)
	}
	*env = e
	return nil
}

func scanEnvelope(data []byte) (protocols.Envelope, error) {
	var e protocols.Envelope
	i := skipWS(data, 0)
	if i >= len(data) {
		return e, &syntaxError{errEOF, i}
	}
	if data[i] != '{' {
		start := i
		j, err := skipValueAt(data, i, 0)
		if err != nil {
			return e, err
		}
		end := j
		if j = skipWS(data, j); j < len(data) {
			return e, &syntaxError{errTrailing, j}
		}
		if string(data[start:end]) == "null" {
			return e, nil // encoding/json leaves the struct as it was: empty
		}
		return e, &typeError{"", describe(data[start])}
	}
	var typeErr error
	i = skipWS(data, i+1)
	if i < len(data) && data[i] == '}' {
		i++
	} else {
		for {
			if i >= len(data) {
				return e, &syntaxError{errEOF, i}
			}
			if data[i] != '"' {
				return e, &syntaxError{errSyntax, i}
			}
			kStart := i
			j, escaped, err := skipString(data, i)
			if err != nil {
				return e, err
			}
			field := matchKey(data[kStart+1:j-1], escaped)
			i = skipWS(data, j)
			if i >= len(data) {
				return e, &syntaxError{errEOF, i}
			}
			if data[i] != ':' {
				return e, &syntaxError{errSyntax, i}
			}
			i = skipWS(data, i+1)
			vStart := i
			if i, err = skipValueAt(data, i, 1); err != nil {
				return e, err
			}
			if typeErr == nil {
				typeErr = setField(&e, field, data[vStart:i])
			}
			i = skipWS(data, i)
			if i >= len(data) {
				return e, &syntaxError{errEOF, i}
			}
			if data[i] == ',' {
				i = skipWS(data, i+1)
				continue
			}
			if data[i] != '}' {
				return e, &syntaxError{errSyntax, i}
			}
			i++
			break
		}
	}
	if i = skipWS(data, i); i < len(data) {
		return e, &syntaxError{errTrailing, i}
	}
	if typeErr != nil {
		return protocols.Envelope{}, typeErr
	}
	return e, nil
}

// The fields of the envelope.
const (
	fieldOther = iota
	fieldOp
	fieldD
	fieldS
	fieldT
)

// setField stores the valid JSON value v of field in e, as encoding/json
// stores it in the reference's envelope struct.
func setField(e *protocols.Envelope, field int, v []byte) error {
	isNull := v[0] == 'n'
	switch field {
	case fieldOp:
		if isNull {
			return nil // null into an int is a no-op
		}
		n, ok := parseInt(v)
		if !ok {
			return &typeError{"op", describe(v[0])}
		}
		e.Op = protocols.Opcode(n)
	case fieldS:
		if isNull {
			e.S = 0
			return nil
		}
		n, ok := parseInt(v)
		if !ok {
			return &typeError{"s", describe(v[0])}
		}
		e.S = n
	case fieldT:
		switch {
		case isNull:
			e.T = ""
		case v[0] == '"':
			e.T = unquote(v)
		default:
			return &typeError{"t", describe(v[0])}
		}
	case fieldD:
		e.D = v[:len(v):len(v)]
	}
	return nil
}

// describe names the JSON type of a value from its first byte.
func describe(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

// parseInt parses a valid JSON number as an int64; ok is false for
// fractions, exponents and overflow, which encoding/json refuses for an
// integer field.
func parseInt(v []byte) (int64, bool) {
	neg := v[0] == '-'
	if neg {
		v = v[1:]
	}
	var u uint64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		if u > (1<<63)/10 {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
		if u > 1<<63 {
			return 0, false
		}
	}
	if neg {
		return -int64(u), true // -(1<<63) wraps to itself: min int64
	}
	if u > 1<<63-1 {
		return 0, false
	}
	return int64(u), true
}

// matchKey returns the field a key (the bytes between its quotes) names,
// matching as encoding/json does: after unescaping, case-insensitively with
// its folding (so "OP" and "\u006fp" name op, and "ſ" names s).
func matchKey(k []byte, escaped bool) int {
	if !escaped {
		switch string(k) {
		case "op":
			return fieldOp
		case "d":
			return fieldD
		case "s":
			return fieldS
		case "t":
			return fieldT
		}
		if len(k) > 8 {
			return fieldOther
		}
	} else if len(k) > 64 {
		return fieldOther // no escaped spelling of op, d, s or t is this long
	}
	var kb [64]byte
	key := k
	if escaped {
		key = appendUnquoted(kb[:0], k)
	}
	var fb [16]byte
	folded := fb[:0]
	for i := 0; i < len(key) && len(folded) <= 2; {
		c := key[i]
		if c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			folded = append(folded, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(key[i:])
		folded = utf8.AppendRune(folded, unicode.ToUpper(unicode.ToLower(r)))
		i += n
	}
	switch string(folded) {
	case "OP":
		return fieldOp
	case "D":
		return fieldD
	case "S":
		return fieldS
	case "T":
		return fieldT
	}
	return fieldOther
}

// eventNames are common dispatch names, so that T costs no allocation.
var eventNames = func() map[string]string {
	m := make(map[string]string)
	for _, n := range []string{
		"READY", "RESUMED", "GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE", "GUILD_MEMBERS_CHUNK",
		"GUILD_MEMBER_ADD", "GUILD_MEMBER_UPDATE", "GUILD_MEMBER_REMOVE", "GUILD_ROLE_CREATE",
		"GUILD_ROLE_UPDATE", "GUILD_ROLE_DELETE", "CHANNEL_CREATE", "CHANNEL_UPDATE", "CHANNEL_DELETE",
		"THREAD_CREATE", "THREAD_UPDATE", "THREAD_DELETE", "THREAD_LIST_SYNC", "THREAD_MEMBERS_UPDATE",
		"MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE", "MESSAGE_DELETE_BULK",
		"MESSAGE_REACTION_ADD", "MESSAGE_REACTION_REMOVE", "PRESENCE_UPDATE", "TYPING_START",
		"VOICE_STATE_UPDATE", "VOICE_SERVER_UPDATE", "INTERACTION_CREATE", "USER_UPDATE",
	} {
		m[n] = n
	}
	return m
}()

// unquote returns the string value of the valid JSON string literal q, as
// encoding/json decodes it.
func unquote(q []byte) string {
	s := q[1 : len(q)-1]
	plain := true
	for _, c := range s {
		if c == '\\' || c >= utf8.RuneSelf {
			plain = false
			break
		}
	}
	if plain {
		if n, ok := eventNames[string(s)]; ok {
			return n
		}
		return string(s)
	}
	return string(appendUnquoted(make([]byte, 0, len(s)), s))
}

// appendUnquoted appends the decoded contents of a valid JSON string (the
// bytes between its quotes) to dst, as encoding/json decodes them: invalid
// UTF-8 and lone surrogates become U+FFFD.
func appendUnquoted(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			switch s[i+1] {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r := hex4(s[i+2:])
				i += 6
				if utf16.IsSurrogate(r) {
					if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
						if r2 := utf16.DecodeRune(r, hex4(s[i+2:])); r2 != unicode.ReplacementChar {
							dst = utf8.AppendRune(dst, r2)
							i += 6
							continue
						}
					}
					r = unicode.ReplacementChar
				}
				dst = utf8.AppendRune(dst, r)
				continue
			default: // '"', '\\', '/'
				dst = append(dst, s[i+1])
			}
			i += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, n := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && n == 1 {
				dst = utf8.AppendRune(dst, unicode.ReplacementChar)
			} else {
				dst = append(dst, s[i:i+n]...)
			}
			i += n
		}
	}
	return dst
}

// hex4 decodes the four hex digits at the start of b, already validated.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c <= 'F':
			c -= 'A' - 10
		default:
			c -= 'a' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// ---- The validating scanner ----

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipWS(data []byte, i int) int {
	for i < len(data) && isWS(data[i]) {
		i++
	}
	return i
}

// skipValueAt validates the JSON value at data[i], nested in depth
// containers, and returns the index just after it. It works with an
// explicit stack, so hostile nesting cannot exhaust the goroutine stack.
func skipValueAt(data []byte, i, depth int) (int, error) {
	var buf [64]byte
	stack := buf[:0] // the open containers: '{' or '['
	for {
		// A value starts at i.
		if i >= len(data) {
			return i, &syntaxError{errEOF, i}
		}
		var err error
		switch c := data[i]; {
		case c == '{' || c == '[':
			if depth+len(stack)+1 > maxDepth {
				return i, &syntaxError{errDepth, i}
			}
			i = skipWS(data, i+1)
			if i >= len(data) {
				return i, &syntaxError{errEOF, i}
			}
			if c == '{' && data[i] == '}' || c == '[' && data[i] == ']' {
				i++
				break // an empty container is a complete value
			}
			stack = append(stack, c)
			if c == '{' {
				if i, err = skipKey(data, i); err != nil {
					return i, err
				}
			}
			continue
		case c == '"':
			if i, _, err = skipString(data, i); err != nil {
				return i, err
			}
		case c == 't':
			i, err = skipLiteral(data, i, "true")
		case c == 'f':
			i, err = skipLiteral(data, i, "false")
		case c == 'n':
			i, err = skipLiteral(data, i, "null")
		case c == '-' || '0' <= c && c <= '9':
			i, err = skipNumber(data, i)
		default:
			return i, &syntaxError{errSyntax, i}
		}
		if err != nil {
			return i, err
		}
		// A value ended at i: close containers until one continues.
		for {
			if len(stack) == 0 {
				return i, nil
			}
			i = skipWS(data, i)
			if i >= len(data) {
				return i, &syntaxError{errEOF, i}
			}
			top := stack[len(stack)-1]
			if data[i] == ',' {
				i = skipWS(data, i+1)
				if top == '{' {
					if i, err = skipKey(data, i); err != nil {
						return i, err
					}
				}
				break
			}
			if top == '{' && data[i] == '}' || top == '[' && data[i] == ']' {
				i++
				stack = stack[:len(stack)-1]
				continue
			}
			return i, &syntaxError{errSyntax, i}
		}
	}
}

// skipKey skips `"key" :` and the whitespace after it.
func skipKey(data []byte, i int) (int, error) {
	if i >= len(data) {
		return i, &syntaxError{errEOF, i}
	}
	if data[i] != '"' {
		return i, &syntaxError{errSyntax, i}
	}
	i, _, err := skipString(data, i)
	if err != nil {
		return i, err
	}
	i = skipWS(data, i)
	if i >= len(data) {
		return i, &syntaxError{errEOF, i}
	}
	if data[i] != ':' {
		return i, &syntaxError{errSyntax, i}
	}
	return skipWS(data, i+1), nil
}

func skipLiteral(data []byte, i int, lit string) (int, error) {
	for k := 0; k < len(lit); k++ {
		if i+k >= len(data) {
			return i + k, &syntaxError{errEOF, i + k}
		}
		if data[i+k] != lit[k] {
			return i + k, &syntaxError{errSyntax, i + k}
		}
	}
	return i + len(lit), nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// skipNumber validates -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func skipNumber(data []byte, i int) (int, error) {
	if data[i] == '-' {
		i++
	}
	if i >= len(data) {
		return i, &syntaxError{errEOF, i}
	}
	switch c := data[i]; {
	case c == '0':
		i++
	case '1' <= c && c <= '9':
		for i++; i < len(data) && isDigit(data[i]); i++ {
		}
	default:
		return i, &syntaxError{errSyntax, i}
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) {
			return i, &syntaxError{errEOF, i}
		}
		if !isDigit(data[i]) {
			return i, &syntaxError{errSyntax, i}
		}
		for i++; i < len(data) && isDigit(data[i]); i++ {
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) {
			return i, &syntaxError{errEOF, i}
		}
		if !isDigit(data[i]) {
			return i, &syntaxError{errSyntax, i}
		}
		for i++; i < len(data) && isDigit(data[i]); i++ {
		}
	}
	return i, nil
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// skipString validates the string literal at data[i] (a '"') and returns
// the index after its closing quote, and whether it holds escapes. It
// looks at eight bytes at a time for a quote, a backslash or a control
// character.
func skipString(data []byte, i int) (end int, escaped bool, err error) {
	i++
	for {
		for i+8 <= len(data) {
			v := uint64(data[i]) | uint64(data[i+1])<<8 | uint64(data[i+2])<<16 | uint64(data[i+3])<<24 |
				uint64(data[i+4])<<32 | uint64(data[i+5])<<40 | uint64(data[i+6])<<48 | uint64(data[i+7])<<56
			q := v ^ (lsb * '"')
			b := v ^ (lsb * '\\')
			// The mask's lowest set byte is exact; the bytes above it may be
			// false positives of the borrow, which do not matter.
			m := (v-lsb*0x20)&^v&msb | (q-lsb)&^q&msb | (b-lsb)&^b&msb
			if m != 0 {
				i += bits.TrailingZeros64(m) / 8
				break
			}
			i += 8
		}
		if i >= len(data) {
			return i, escaped, &syntaxError{errEOF, i}
		}
		switch c := data[i]; {
		case c == '"':
			return i + 1, escaped, nil
		case c == '\\':
			escaped = true
			if i+1 >= len(data) {
				return i + 1, escaped, &syntaxError{errEOF, i + 1}
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for k := 2; k < 6; k++ {
					if i+k >= len(data) {
						return i + k, escaped, &syntaxError{errEOF, i + k}
					}
					if !isHex(data[i+k]) {
						return i + k, escaped, &syntaxError{errSyntax, i + k}
					}
				}
				i += 6
			default:
				return i + 1, escaped, &syntaxError{errSyntax, i + 1}
			}
		case c < 0x20:
			return i, escaped, &syntaxError{errSyntax, i}
		default:
			i++
		}
	}
}

func isHex(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }
