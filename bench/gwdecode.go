package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/disgoorg/disgo/gateway"

	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/impl/fast"
	"github.com/cordkit/cordkit/protocols"
)

// Decoding alone: each library's per-payload decode path, replayed over
// the pre-generated uncompressed payloads, without mock, socket or
// dispatcher, on one goroutine. It compares what the libraries spend per
// event on the CPU, which the end-to-end rows blur with the mock's own
// work.

type decodePath struct {
	name   string
	decode func(frame []byte) error
}

var decodePaths = []decodePath{
	{"cordkit reference, raw (envelope)", func(f []byte) error { return cordkitDecode(reference.Codec{}, f, false) }},
	{"cordkit reference, typed (envelope + structs)", func(f []byte) error { return cordkitDecode(reference.Codec{}, f, true) }},
	{"cordkit fast, raw (envelope)", func(f []byte) error { return cordkitDecode(fast.Codec{}, f, false) }},
	{"cordkit fast, typed (envelope + structs)", func(f []byte) error { return cordkitDecode(fast.Codec{}, f, true) }},
	{"discordgo (Event, then its struct, as Session.onEvent does)", discordgoDecode},
	{"disgo (gateway.Message, as gatewayImpl.parseMessage does)", disgoDecode},
}

func cordkitDecode(codec protocols.Codec, f []byte, typed bool) error {
	var env protocols.Envelope
	if err := codec.DecodeEnvelope(f, &env); err != nil {
		return err
	}
	if typed {
		return decodeTyped(codec, env.T, env.D)
	}
	return nil
}

func discordgoDecode(f []byte) error {
	var e *discordgo.Event
	if err := json.NewDecoder(bytes.NewReader(f)).Decode(&e); err != nil {
		return err
	}
	var v any
	switch e.Type {
	case evMessageCreate:
		v = &discordgo.MessageCreate{}
	case evGuildCreate:
		v = &discordgo.GuildCreate{}
	case evPresenceUpdate:
		v = &discordgo.PresenceUpdate{}
	case evTypingStart:
		v = &discordgo.TypingStart{}
	case evGuildMemberUpdate:
		v = &discordgo.GuildMemberUpdate{}
	default:
		return fmt.Errorf("unexpected %s", e.Type)
	}
	err := json.Unmarshal(e.RawData, v)
	runtime.KeepAlive(v)
	return err
}

func disgoDecode(f []byte) error {
	var m gateway.Message
	if err := json.NewDecoder(bytes.NewReader(f)).Decode(&m); err != nil {
		return err
	}
	if _, ok := m.D.(gateway.EventData); !ok {
		return fmt.Errorf("disgo decoded %T", m.D)
	}
	return nil
}

type decodeRow struct {
	name                  string
	nsPerEv, mbPerSec     float64
	allocsPerEv, bytesPEv float64
}

// benchDecode times each path over all frames, cfg.runs times after a
// warm-up pass; medians.
func benchDecode(data *gwData, runs int) ([]decodeRow, error) {
	var out []decodeRow
	n := float64(len(data.frames))
	for _, p := range decodePaths {
		for _, f := range data.frames {
			if err := p.decode(f); err != nil {
				return nil, fmt.Errorf("decode %s: %w", p.name, err)
			}
		}
		var ns, allocs, bs []float64
		for range runs {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			for _, f := range data.frames {
				_ = p.decode(f)
			}
			el := time.Since(start)
			runtime.ReadMemStats(&after)
			ns = append(ns, float64(el.Nanoseconds())/n)
			allocs = append(allocs, float64(after.Mallocs-before.Mallocs)/n)
			bs = append(bs, float64(after.TotalAlloc-before.TotalAlloc)/n)
		}
		m := median(ns)
		out = append(out, decodeRow{name: p.name, nsPerEv: m, mbPerSec: float64(data.jsonBytes) / n / m * 1e3, allocsPerEv: median(allocs), bytesPEv: median(bs)})
	}
	return out, nil
}
