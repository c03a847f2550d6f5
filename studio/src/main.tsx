import { render } from "preact";
import { App } from "./app";
import { restoreSession } from "./auth/signin";
import { startRouter } from "./router";
import "./styles.css";

startRouter();
void restoreSession(); // a session cookie from an earlier visit signs this tab in
render(<App />, document.getElementById("app") as HTMLElement);
