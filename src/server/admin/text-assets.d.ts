// The review page's script and style are plain files the bundler embeds as text
// (`import x from "./page.client.js" with { type: "text" }`).
declare module "*.client.js" {
  const text: string;
  export default text;
}
declare module "*.style.css" {
  const text: string;
  export default text;
}
