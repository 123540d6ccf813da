package server

import (
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

func TestIdentity(t *testing.T) {
	md, err := structpb.NewStruct(map[string]any{"zone": "eu-1"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		node      *core.Node
		wantAgent string
		wantZone  any
	}{
		{name: "no node", node: nil},
		{name: "version string", node: &core.Node{Id: "a", UserAgentName: "envoy",
			UserAgentVersionType: &core.Node_UserAgentVersion{UserAgentVersion: "1.34.0-dev"}}, wantAgent: "envoy/1.34.0-dev"},
		{name: "build version", node: &core.Node{Id: "a", UserAgentName: "envoy", Metadata: md,
			UserAgentVersionType: &core.Node_UserAgentBuildVersion{UserAgentBuildVersion: &core.BuildVersion{
				Version: &typev3.SemanticVersion{MajorNumber: 1, MinorNumber: 40, Patch: 1}}}},
			wantAgent: "envoy/1.40.1", wantZone: "eu-1"},
		{name: "name only", node: &core.Node{Id: "a", UserAgentName: "stand-in"}, wantAgent: "stand-in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := identity(tt.node)
			if id.ID != tt.node.GetId() || id.UserAgent != tt.wantAgent || id.Metadata["zone"] != tt.wantZone {
				t.Errorf("identity = %+v", id)
			}
		})
	}
}
