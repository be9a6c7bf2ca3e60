package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/poslab/posd/chain"
)

// ErrStreamClosed is sent on the error channel of Events when the node ends
// the event stream.
var ErrStreamClosed = errors.New("event stream closed by the node")

// maxEventSize bounds one Server-Sent Event (a block with many transactions
// is a few MiB at most).
const maxEventSize = 64 << 20

// Events subscribes to GET /v1/events and delivers each new head block.
// Both channels are closed when the subscription ends. The error channel
// carries at most one error: the failure to subscribe (an *APIError or
// *UnreachableError), a broken stream, or ErrStreamClosed. When ctx ends, the
// channels close without an error. Events of other types than "block" are
// skipped.
func (c *Client) Events(ctx context.Context) (<-chan *chain.Block, <-chan error) {
	blocks := make(chan *chain.Block)
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		defer close(blocks)
		err := c.readEvents(ctx, blocks)
		if err != nil && ctx.Err() == nil {
			errc <- err
		}
	}()
	return blocks, errc
}

func (c *Client) readEvents(ctx context.Context, blocks chan<- *chain.Block) error {
	resp, cancel, err := c.send(ctx, request{method: http.MethodGet, path: "/v1/events", stream: true})
	if err != nil {
		return err
	}
	defer cancel()
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "text/event-stream") {
		return fmt.Errorf("GET /v1/events at %s answered %s, not an event stream", c.base, ct)
	}
	return readSSE(resp.Body, func(event, data string) error {
		if event != "block" {
			return nil
		}
		var b chain.Block
		if err := json.Unmarshal([]byte(data), &b); err != nil {
			return fmt.Errorf("bad block event from %s: %w", c.base, err)
		}
		select {
		case blocks <- &b:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
}

// readSSE parses a text/event-stream (the WHATWG format: "field: value"
// lines, events ended by a blank line, ":" comments) and calls emit for each
// event with data. It returns ErrStreamClosed at the end of r.
func readSSE(r io.Reader, emit func(event, data string) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		event string
		data  strings.Builder
		has   bool
	)
	for {
		line, err := readLine(br)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return ErrStreamClosed
			}
			return fmt.Errorf("event stream broken: %w", err)
		}
		if line == "" {
			if has {
				name := event
				if name == "" {
					name = "message"
				}
				if err := emit(name, data.String()); err != nil {
					return err
				}
			}
			event, has = "", false
			data.Reset()
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			event = value
		case "data":
			if has {
				data.WriteByte('\n')
			}
			data.WriteString(value)
			has = true
		}
		if data.Len() > maxEventSize {
			return fmt.Errorf("event stream broken: event over %d bytes", maxEventSize)
		}
	}
}

// readLine reads one line without its "\n", "\r\n" or "\r" ending.
func readLine(br *bufio.Reader) (string, error) {
	var sb strings.Builder
	for {
		frag, err := br.ReadSlice('\n')
		sb.Write(frag)
		if sb.Len() > maxEventSize {
			return "", fmt.Errorf("line over %d bytes", maxEventSize)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && sb.Len() > 0 {
				// A last line without its newline ends the stream anyway.
				return "", io.EOF
			}
			return "", err
		}
		s := strings.TrimSuffix(sb.String(), "\n")
		return strings.TrimSuffix(s, "\r"), nil
	}
}
