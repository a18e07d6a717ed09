import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { SCOPES } from '../../shared/auth/token.service.ts';
import type { OidcConfig } from '../../shared/config/config.ts';

export const PROTECTED_RESOURCE_PATH = '/.well-known/oauth-protected-resource';

/** Where the metadata of `resource` lives (RFC 9728 §3.1: the well-known path, then the resource's own path). */
export function resourceMetadataUrl(resource: string): string {
  const url = new URL(resource);
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
  return `${url.origin}${PROTECTED_RESOURCE_PATH}${path}`;
}

const metadata = z.object({
  resource: z.string(),
  authorization_servers: z.array(z.string()),
  bearer_methods_supported: z.array(z.string()),
  scopes_supported: z.array(z.string()).optional(),
  resource_name: z.string(),
});

/**
 * OAuth 2.0 Protected Resource Metadata (RFC 9728) for the MCP endpoint: names the OIDC issuer, so MCP
 * clients that speak OAuth find where to sign in (MCP's authorization spec looks here first, led by the
 * `resource_metadata` in a 401's WWW-Authenticate). Public, like any discovery document. Registered only
 * with OIDC configured.
 */
export const oauthMetadataRoutes: FastifyPluginAsyncZod<{ oidc: OidcConfig }> = async (app, { oidc }) => {
  const body = {
    resource: oidc.resource,
    authorization_servers: [oidc.issuer],
    bearer_methods_supported: ['header'],
    // Only when the scopes come from OAuth scopes (a claim of groups or roles is nothing a client requests).
    ...(['scope', 'scp'].includes(oidc.scopesClaim) ? { scopes_supported: oidc.scopeMap ? Object.keys(oidc.scopeMap) : [...SCOPES] } : {}),
    resource_name: 'Personal Knowledge MCP',
  };
  const paths = new Set([PROTECTED_RESOURCE_PATH, new URL(resourceMetadataUrl(oidc.resource)).pathname]);
  for (const url of paths) {
    app.get(
      url,
      {
        schema: {
          tags: ['mcp'],
          summary: 'OAuth protected-resource metadata of the MCP endpoint (RFC 9728): the identity provider to sign in with',
          response: { 200: metadata },
        },
      },
      async (_request, reply) => {
        reply.header('cache-control', 'public, max-age=3600');
        return body;
      },
    );
  }
};
