package cordkit

import (
	"context"
	"fmt"
	"net/http"

	"github.com/cordkit/cordkit/protocols"
)

// REST is a small set of typed helpers over any [protocols.HTTPClient], plus
// [REST.Request] for every other route. Helpers work the same whichever
// client, limiter or codec the TypeSheet chose.
type REST struct {
	client protocols.HTTPClient
	codec  protocols.Codec
}

// NewREST returns helpers that send through client and encode with codec.
func NewREST(client protocols.HTTPClient, codec protocols.Codec) *REST {
	return &REST{client: client, codec: codec}
}

// RequestOption changes one request before it is sent.
type RequestOption func(*protocols.Request)

// WithReason sets the audit-log reason (X-Audit-Log-Reason).
func WithReason(reason string) RequestOption {
	return func(r *protocols.Request) { r.Reason = reason }
}

// WithQuery adds a query parameter.
func WithQuery(key, value string) RequestOption {
	return func(r *protocols.Request) {
		if r.Query == nil {
			r.Query = make(map[string][]string)
		}
		r.Query.Add(key, value)
	}
}

// Do sends req as it is.
func (r *REST) Do(ctx context.Context, req *protocols.Request) (*protocols.Response, error) {
	return r.client.Do(ctx, req)
}

// Request sends method to path (relative to the API base, such as
// "/guilds/123/roles"), with in encoded as the JSON body when not nil, and
// decodes the response into out when not nil. The route's template and
// top-level resource are derived from path by [protocols.ParseRoute].
func (r *REST) Request(ctx context.Context, method, path string, in, out any, opts ...RequestOption) error {
	route, err := protocols.ParseRoute(method, path)
	if err != nil {
		return err
	}
	return r.call(ctx, route, in, out, nil, opts)
}

// call encodes in, sends, and decodes into out.
func (r *REST) call(ctx context.Context, route protocols.Route, in, out any, files []protocols.File, opts []RequestOption) error {
	req := &protocols.Request{Route: route, Files: files}
	if in != nil {
		body, err := r.codec.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s: encoding body: %w", route, err)
		}
		req.Body = body
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := r.client.Do(ctx, req)
	if err != nil {
		return err
	}
	if out == nil || resp.Status == http.StatusNoContent || len(resp.Body) == 0 {
		return nil
	}
	if err := r.codec.Unmarshal(resp.Body, out); err != nil {
		return fmt.Errorf("%s: decoding response: %w", route, err)
	}
	return nil
}

// send builds a Route from a template and its arguments, then calls; an
// invalid argument (such as an empty ID) still returns an error.
func (r *REST) send(ctx context.Context, method, template string, args []string, in, out any, files []protocols.File, opts []RequestOption) error {
	route, err := protocols.NewRoute(method, template, args...)
	if err != nil {
		return err
	}
	return r.call(ctx, route, in, out, files, opts)
}

// GetGatewayBot returns GET /gateway/bot: the gateway URL, the recommended
// shard count and the session-start limit.
func (r *REST) GetGatewayBot(ctx context.Context) (*protocols.GatewayBot, error) {
	var gb protocols.GatewayBot
	if err := r.send(ctx, http.MethodGet, "/gateway/bot", nil, nil, &gb, nil, nil); err != nil {
		return nil, err
	}
	return &gb, nil
}

// GetCurrentUser returns GET /users/@me: the bot's own user.
func (r *REST) GetCurrentUser(ctx context.Context) (*User, error) {
	var u User
	if err := r.send(ctx, http.MethodGet, "/users/@me", nil, nil, &u, nil, nil); err != nil {
		return nil, err
	}
	return &u, nil
}

// GetChannel returns GET /channels/{channel_id}.
func (r *REST) GetChannel(ctx context.Context, channelID string) (*Channel, error) {
	var c Channel
	if err := r.send(ctx, http.MethodGet, "/channels/{channel_id}", []string{channelID}, nil, &c, nil, nil); err != nil {
		return nil, err
	}
	return &c, nil
}

// MessageCreate is the body of CreateMessage. Files are uploaded as
// multipart parts files[n], with the rest as payload_json.
type MessageCreate struct {
	Content          string            `json:"content,omitempty"`
	Nonce            string            `json:"nonce,omitempty"`
	TTS              bool              `json:"tts,omitempty"`
	Embeds           []Embed           `json:"embeds,omitempty"`
	AllowedMentions  *AllowedMentions  `json:"allowed_mentions,omitempty"`
	MessageReference *MessageReference `json:"message_reference,omitempty"`
	Attachments      []AttachmentRef   `json:"attachments,omitempty"`
	Flags            int               `json:"flags,omitempty"`
	// Files are sent as files[0], files[1], ...; when Attachments is empty
	// it is filled with one entry per file.
	Files []protocols.File `json:"-"`
}

// AttachmentRef describes an uploaded file in payload_json; ID is the
// index n of its files[n] part.
type AttachmentRef struct {
	ID          int    `json:"id"`
	Filename    string `json:"filename"`
	Description string `json:"description,omitempty"`
}

// CreateMessage sends POST /channels/{channel_id}/messages.
func (r *REST) CreateMessage(ctx context.Context, channelID string, m MessageCreate, opts ...RequestOption) (*Message, error) {
	if len(m.Files) > 0 && len(m.Attachments) == 0 {
		m.Attachments = make([]AttachmentRef, len(m.Files))
		for i, f := range m.Files {
			m.Attachments[i] = AttachmentRef{ID: i, Filename: f.Name}
		}
	}
	var msg Message
	err := r.send(ctx, http.MethodPost, "/channels/{channel_id}/messages", []string{channelID}, m, &msg, m.Files, opts)
	if err != nil {
		return nil, err
	}
	return &msg, nil
}

// MessageEdit is the body of EditMessage; nil fields are left unchanged.
type MessageEdit struct {
	Content *string  `json:"content,omitempty"`
	Embeds  *[]Embed `json:"embeds,omitempty"`
	Flags   *int     `json:"flags,omitempty"`
}

// EditMessage sends PATCH /channels/{channel_id}/messages/{message_id}.
func (r *REST) EditMessage(ctx context.Context, channelID, messageID string, m MessageEdit, opts ...RequestOption) (*Message, error) {
	var msg Message
	err := r.send(ctx, http.MethodPatch, "/channels/{channel_id}/messages/{message_id}", []string{channelID, messageID}, m, &msg, nil, opts)
	if err != nil {
		return nil, err
	}
	return &msg, nil
}

// DeleteMessage sends DELETE /channels/{channel_id}/messages/{message_id}.
// Use WithReason for the audit log.
func (r *REST) DeleteMessage(ctx context.Context, channelID, messageID string, opts ...RequestOption) error {
	return r.send(ctx, http.MethodDelete, "/channels/{channel_id}/messages/{message_id}", []string{channelID, messageID}, nil, nil, nil, opts)
}
