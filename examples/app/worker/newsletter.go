package worker

import (
	"github.com/launchdarkly/go-sdk-common/v3/ldcontext"
	ld "github.com/launchdarkly/go-server-sdk/v7"
)

// Subscribed records a newsletter sign-up. No metric measures this event yet.
func Subscribed(client *ld.LDClient, userKey string) error {
	return client.TrackEvent("newsletter-signup", ldcontext.New(userKey))
}
