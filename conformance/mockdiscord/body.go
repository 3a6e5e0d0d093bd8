package mockdiscord

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// payload is a decoded request body.
type payload struct {
	fields map[string]json.RawMessage
	form   bool // fields came from form values: every value is a JSON string
	files  []Attachment
	index  []int // n of each files[n] part
}

const (
	maxFiles          = 10
	maxContentRunes   = 2000
	maxEmbeds         = 10
	maxEmbedTitle     = 256
	maxEmbedDesc      = 4096
	maxNonceLength    = 25
	maxWebhookName    = 80
	contentTypeErrMsg = `Expected "Content-Type" header to be one of {'application/json', 'application/x-www-form-urlencoded', 'multipart/form-data'}.`
)

// readBody reads the whole request body, answering 413 when it is larger
// than ten maximum-size files plus 8 MiB.
func (c *call) readBody() ([]byte, bool) {
	if c.r.Body == nil {
		return nil, true
	}
	limit := c.s.cfg.MaxFileSize*maxFiles + 8<<20
	b, err := io.ReadAll(io.LimitReader(c.r.Body, limit+1))
	if err != nil {
		if c.r.Context().Err() != nil {
			c.gone = true
		} else {
			c.fail(http.StatusBadRequest, codeGeneral, statusMessage(http.StatusBadRequest))
		}
		return nil, false
	}
	if int64(len(b)) > limit {
		c.fail(http.StatusRequestEntityTooLarge, codeRequestTooLarge, "Request entity too large")
		return nil, false
	}
	return b, true
}

// parseBody decodes a JSON, form or multipart body. An empty body gives
// empty fields. It answers the error and reports false when the body is
// unusable: 400 50035 for a wrong Content-Type or a non-object, 400 50109
// for invalid JSON, 413 40005 for a file above MaxFileSize.
func (c *call) parseBody() (*payload, bool) {
	raw, ok := c.readBody()
	if !ok {
		return nil, false
	}
	pl := &payload{fields: map[string]json.RawMessage{}}
	if len(raw) == 0 {
		return pl, true
	}
	mt, mp, err := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
	switch {
	case err == nil && mt == "application/json":
		return pl, c.decodeObject(raw, pl)
	case err == nil && mt == "application/x-www-form-urlencoded":
		vals, err := url.ParseQuery(string(raw))
		if err != nil {
			errs := formErrors{}
			errs.add("FORM_INVALID", "The form body could not be parsed.")
			c.failForm(errs)
			return nil, false
		}
		for k, v := range vals {
			pl.fields[k] = jsonString(v[0])
		}
		pl.form = true
		return pl, true
	case err == nil && mt == "multipart/form-data":
		return pl, c.parseMultipart(raw, mp["boundary"], pl)
	}
	errs := formErrors{}
	errs.add("CONTENT_TYPE_INVALID", contentTypeErrMsg)
	c.failForm(errs)
	return nil, false
}

// decodeObject decodes raw JSON into pl.fields: 50109 for invalid JSON,
// 50035 for JSON that is not an object.
func (c *call) decodeObject(raw []byte, pl *payload) bool {
	if !json.Valid(raw) {
		c.fail(http.StatusBadRequest, codeInvalidJSON, "The request body contains invalid JSON.")
		return false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		errs := formErrors{}
		errs.add("DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
		c.failForm(errs)
		return false
	}
	pl.fields = m
	return true
}

// fileIndex returns n for a part named "files[n]", or -1.
func fileIndex(name string) int {
	if !strings.HasPrefix(name, "files[") || !strings.HasSuffix(name, "]") {
		return -1
	}
	n, err := strconv.Atoi(name[len("files[") : len(name)-1])
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// parseMultipart reads files[n] parts as attachments and payload_json (or,
// without it, the other form fields) as the fields. Parts with other names
// that carry a file name are ignored, as Discord only reads files[n].
func (c *call) parseMultipart(raw []byte, boundary string, pl *payload) bool {
	malformed := func() bool {
		errs := formErrors{}
		errs.add("MULTIPART_INVALID", "The multipart body could not be parsed.")
		c.failForm(errs)
		return false
	}
	if boundary == "" {
		return malformed()
	}
	mr := multipart.NewReader(bytes.NewReader(raw), boundary)
	form := map[string]json.RawMessage{}
	var payloadJSON []byte
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return malformed()
		}
		name := part.FormName()
		data, err := io.ReadAll(io.LimitReader(part, c.s.cfg.MaxFileSize+1))
		if err != nil {
			return malformed()
		}
		switch n := fileIndex(name); {
		case name == "payload_json":
			payloadJSON = data
		case n >= 0:
			if int64(len(data)) > c.s.cfg.MaxFileSize {
				c.fail(http.StatusRequestEntityTooLarge, codeRequestTooLarge, "Request entity too large")
				return false
			}
			filename := part.FileName()
			if filename == "" {
				filename = "blob"
			}
			ct := part.Header.Get("Content-Type")
			if ct == "" {
				ct = "application/octet-stream"
			}
			pl.files = append(pl.files, Attachment{Filename: filename, ContentType: ct, Size: len(data), Data: data})
			pl.index = append(pl.index, n)
		case part.FileName() != "" || name == "":
		default:
			form[name] = jsonString(string(data))
		}
	}
	if len(pl.files) > maxFiles {
		errs := formErrors{}
		errs.add("BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.", "files")
		c.failForm(errs)
		return false
	}
	if payloadJSON != nil {
		return c.decodeObject(payloadJSON, pl)
	}
	pl.fields, pl.form = form, true
	return true
}

func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// validator reads typed fields from a payload and collects form errors.
type validator struct {
	pl   *payload
	errs formErrors
}

func newValidator(pl *payload) *validator { return &validator{pl: pl, errs: formErrors{}} }

func (v *validator) raw(name string) (json.RawMessage, bool) {
	r, ok := v.pl.fields[name]
	if !ok || string(bytes.TrimSpace(r)) == "null" {
		return nil, false
	}
	return r, true
}

// present reports whether name was sent, even as null.
func (v *validator) present(name string) bool {
	_, ok := v.pl.fields[name]
	return ok
}

// str reads a string field; absent and null give "".
func (v *validator) str(name string, maxRunes int, path ...string) string {
	r, ok := v.raw(name)
	if !ok {
		return ""
	}
	at := append(append([]string(nil), path...), name)
	var s string
	if err := json.Unmarshal(r, &s); err != nil {
		v.errs.add("BASE_TYPE_STRING", "Must be a string.", at...)
		return ""
	}
	if maxRunes > 0 && utf8.RuneCountInString(s) > maxRunes {
		v.errs.add("BASE_TYPE_MAX_LENGTH", "Must be "+strconv.Itoa(maxRunes)+" or fewer in length.", at...)
	}
	return s
}

// boolean reads a boolean field; strings "true"/"false" are accepted too.
func (v *validator) boolean(name string) bool {
	r, ok := v.raw(name)
	if !ok {
		return false
	}
	var b bool
	if json.Unmarshal(r, &b) == nil {
		return b
	}
	var s string
	if json.Unmarshal(r, &s) == nil {
		if b, ok := parseBool(s); ok {
			return b
		}
	}
	v.errs.add("BASE_TYPE_BOOLEAN", "Must be either true or false.", name)
	return false
}

// integer reads an integer field; numeric strings are accepted too.
func (v *validator) integer(name string) (int, bool) {
	r, ok := v.raw(name)
	if !ok {
		return 0, false
	}
	var n int
	if json.Unmarshal(r, &n) == nil {
		return n, true
	}
	var s string
	if json.Unmarshal(r, &s) == nil {
		if n, err := strconv.Atoi(s); err == nil {
			return n, true
		}
	}
	v.errs.add("NUMBER_TYPE_COERCE", "Value \""+strings.Trim(string(r), `"`)+"\" is not int.", name)
	return 0, false
}

// array reads an array field, each element raw.
func (v *validator) array(name string) []json.RawMessage {
	r, ok := v.raw(name)
	if !ok {
		return nil
	}
	var a []json.RawMessage
	if err := json.Unmarshal(r, &a); err != nil {
		v.errs.add("BASE_TYPE_ARRAY", "Must be an array.", name)
		return nil
	}
	return a
}

// nonce reads the nonce: a string of at most 25 characters, or an integer.
// It returns the JSON text.
func (v *validator) nonce() string {
	r, ok := v.raw("nonce")
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(r, &s) == nil {
		if utf8.RuneCountInString(s) > maxNonceLength {
			v.errs.add("BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.", "nonce")
		}
		return string(jsonString(s))
	}
	var n json.Number
	d := json.NewDecoder(bytes.NewReader(r))
	d.UseNumber()
	if d.Decode(&n) == nil {
		if _, err := strconv.ParseInt(n.String(), 10, 64); err == nil {
			return n.String()
		}
	}
	v.errs.add("BASE_TYPE_STRING", "Must be a string or an integer.", "nonce")
	return ""
}

// embeds reads and checks the embeds array.
func (v *validator) embeds() []json.RawMessage {
	list := v.array("embeds")
	if len(list) > maxEmbeds {
		v.errs.add("BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.", "embeds")
	}
	for i, e := range list {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(e, &obj); err != nil || obj == nil {
			v.errs.add("MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType", "embeds", strconv.Itoa(i))
			continue
		}
		sub := &validator{pl: &payload{fields: obj}, errs: v.errs}
		sub.str("title", maxEmbedTitle, "embeds", strconv.Itoa(i))
		sub.str("description", maxEmbedDesc, "embeds", strconv.Itoa(i))
	}
	return list
}

// attachmentMeta applies payload_json's attachments array (id = n of
// files[n]: filename and description) to the uploaded files.
func (v *validator) attachmentMeta(files []Attachment, index []int) {
	for i, a := range v.array("attachments") {
		var meta struct {
			ID          json.RawMessage `json:"id"`
			Filename    *string         `json:"filename"`
			Description *string         `json:"description"`
		}
		if err := json.Unmarshal(a, &meta); err != nil {
			v.errs.add("MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType", "attachments", strconv.Itoa(i))
			continue
		}
		id := strings.Trim(string(meta.ID), `"`)
		for j, n := range index {
			if strconv.Itoa(n) != id {
				continue
			}
			if meta.Filename != nil && *meta.Filename != "" {
				files[j].Filename = *meta.Filename
			}
			if meta.Description != nil {
				files[j].Description = *meta.Description
			}
		}
	}
}

// parseBool accepts the query and form booleans Discord documents.
func parseBool(s string) (bool, bool) {
	switch s {
	case "true", "True", "1":
		return true, true
	case "false", "False", "0":
		return false, true
	}
	return false, false
}

// messageInput validates a create-message (or execute-webhook) body and
// returns the message it describes, or answers the error: 400 50035 with
// nested errors for malformed fields, then 400 50006 for an empty message.
func (c *call) messageInput(pl *payload, webhook bool) (*Message, bool) {
	v := newValidator(pl)
	m := &Message{
		Content: v.str("content", maxContentRunes),
		TTS:     v.boolean("tts"),
		Nonce:   v.nonce(),
		Embeds:  v.embeds(),
	}
	m.Flags, _ = v.integer("flags")
	m.Components = v.array("components")
	stickers := v.array("sticker_ids")
	_, poll := v.raw("poll")
	v.attachmentMeta(pl.files, pl.index)
	m.Attachments = pl.files
	if webhook {
		if name := v.str("username", maxWebhookName); name != "" {
			m.AuthorName = name
		}
		v.str("avatar_url", 0)
	}
	if len(v.errs) > 0 {
		c.failForm(v.errs)
		return nil, false
	}
	if strings.TrimSpace(m.Content) == "" && len(m.Embeds) == 0 && len(m.Attachments) == 0 &&
		len(stickers) == 0 && len(m.Components) == 0 && !poll {
		c.fail(http.StatusBadRequest, codeEmptyMessage, "Cannot send an empty message")
		return nil, false
	}
	return m, true
}
