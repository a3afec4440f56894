package cdeload

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/cdeload/cdeload/internal/kubetest"
	"github.com/cdeload/cdeload/lab"
)

// newPrivateKeyPEM returns a fresh ed25519 private key in OpenSSH PEM form.
func newPrivateKeyPEM(t *testing.T) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(b))
}

// The sshUser and sshKey of new Kubernetes(...) are the defaults of
// ssh.connect to its workspaces, ahead of the lab's credentials; the
// script's own options still win; a bad key is refused without echoing it.
func TestKubernetesProviderSSHCredentials(t *testing.T) {
	env := kubetest.New(t)
	vars := startKubeLab(t, env, lab.KubernetesConfig{})
	vars["OTHER_KEY"] = newPrivateKeyPEM(t)
	r := runScript(t, header+`
import { Kubernetes } from 'k6/x/cdeload';
const opts = { namespace: __ENV.NS, kubeconfig: __ENV.KCFG, image: 'codercom/enterprise-base:ubuntu' };
const k8s = new Kubernetes(Object.assign({ sshUser: 'dev', sshKey: __ENV.OTHER_KEY }, opts));
let badKey = 'no error';
try { new Kubernetes(Object.assign({ sshKey: 'SECRET-not-a-key' }, opts)); } catch (e) { badKey = e.message; }
async function msg(fn) { try { await fn(); return 'no error'; } catch (e) { return e.message; } }
export default async function () {
  report(TEST, 'badKey', badKey);
  const ws = await k8s.createWorkspace();
  report(TEST, 'sshUser', ws.sshUser);
  report(TEST, 'providerKey', await msg(() => ssh.connect({ host: ws.address, timeout: '20s' })));
  const s = await ssh.connect({ host: ws.address, privateKey: __ENV.LAB_KEY });
  report(TEST, 'user', s.user);
  await s.close();
  await k8s.cleanup();
}
`, vars)
	if got := r.reportString("badKey"); !strings.Contains(got, "sshKey") || strings.Contains(got, "SECRET") {
		t.Errorf("bad sshKey: %q, want an error naming sshKey without the value", got)
	}
	if got := r.reportString("sshUser"); got != "dev" {
		t.Errorf("ws.sshUser = %q, want dev", got)
	}
	// The lab's sshd accepts any user but only the lab's key: the
	// provider's key (not the lab's default) must have been offered.
	if got := r.reportString("providerKey"); !strings.Contains(got, "unable to authenticate") {
		t.Errorf("ssh.connect with the provider's unauthorized key: %q, want an authentication failure", got)
	}
	if got := r.reportString("user"); got != "dev" {
		t.Errorf("session user %q, want the provider's sshUser dev", got)
	}
	assertNamespaceEmpty(t, env)
}
