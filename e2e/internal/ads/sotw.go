package ads

import (
	"context"
	"slices"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
)

// typeState is one type's state under state of the world.
type typeState struct {
	version    string   // last accepted version_info
	nonce      string   // nonce of the last response received on this stream
	names      []string // names subscribed; nil for wildcard types
	subscribed bool     // a request was sent on this stream
}

// stream runs one state-of-the-world ADS stream; received says whether any
// response arrived (a stream that worked resets the backoff).
func (c *Client) stream(ctx context.Context, api discovery.AggregatedDiscoveryServiceClient) (received bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := api.StreamAggregatedResources(ctx)
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	c.connects++
	c.mu.Unlock()
	for _, ts := range c.types {
		ts.nonce, ts.subscribed = "", false
	}
	first := true
	send := func(typeURL string, detail error) error {
		ts := c.types[typeURL]
		req := &discovery.DiscoveryRequest{
			VersionInfo:   ts.version,
			ResourceNames: ts.names,
			TypeUrl:       typeURL,
			ResponseNonce: ts.nonce,
		}
		if first {
			req.Node, first = c.cfg.Node, false
		}
		if detail != nil {
			req.ErrorDetail = &status.Status{Code: int32(codes.InvalidArgument), Message: detail.Error()}
		}
		ts.subscribed = true
		return s.Send(req)
	}
	for _, t := range c.cfg.Wildcard {
		if err := send(t, nil); err != nil {
			return false, err
		}
	}
	if err := c.resubscribe(send); err != nil {
		return false, err
	}
	for {
		resp, err := s.Recv()
		if err != nil {
			return received, err
		}
		received = true
		c.received(resp.GetTypeUrl(), resp)
		ts, ok := c.types[resp.GetTypeUrl()]
		if !ok {
			c.cfg.Log.Warn("ads: response for a type never subscribed", zap.String("type", resp.GetTypeUrl()))
			continue
		}
		ts.nonce = resp.GetNonce()
		herr := c.cfg.Handler.Handle(resp)
		if herr == nil {
			ts.version = resp.GetVersionInfo()
		}
		if err := send(resp.GetTypeUrl(), herr); err != nil {
			return received, err
		}
		if err := c.resubscribe(send); err != nil {
			return received, err
		}
	}
}

// resubscribe sends a request for every named type whose wanted names
// differ from what this stream subscribed (or that is not subscribed yet).
// A type whose names drop to none keeps its last subscription: an empty
// name list would mean "everything" to a state-of-the-world server.
func (c *Client) resubscribe(send func(string, error) error) error {
	for _, t := range c.cfg.Named {
		ts := c.types[t]
		names := c.names(t)
		if len(names) == 0 || (ts.subscribed && slices.Equal(names, ts.names)) {
			continue
		}
		ts.names = names
		if err := send(t, nil); err != nil {
			return err
		}
	}
	return nil
}
