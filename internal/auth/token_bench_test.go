package auth

import (
	"testing"
	"time"
)

func BenchmarkVerify(b *testing.B) {
	k := testKeyring(b)
	tok, err := k.Issue("1000042", []string{"user"}, time.Hour, testNow)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Verify(tok, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIssue(b *testing.B) {
	k := testKeyring(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Issue("1000042", []string{"user"}, time.Hour, testNow); err != nil {
			b.Fatal(err)
		}
	}
}
